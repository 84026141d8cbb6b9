"""The reverse-process viewer: sample from a run, scrub through every step while the
trajectory is still being written, step or branch from any step, export.

Sampling runs ``engine.jobs.sample_job`` through a ``JobBridge`` with ``records=False``:
the steps go to an HDF5 file (one chunk per step) and never through the event queue,
so a 1000-step run of 64 images cannot pile up in memory. A timer follows the file as
it grows (``TrajectoryData.update``); showing a step reads that step's chunks only.

Branching re-runs the sampler from the scrubbed state (``x_init``, ``t_start``) into a
second file; in step mode the job pauses itself after each step (``JobControl.pause``
from the worker, so the next ``checkpoint()`` blocks) and each click resumes it once.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QLabel,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.engine.config import sampler_options
from studio.engine.events import Failed, Finished, SampleStep, Started
from studio.engine.jobs import sample_job
from studio.engine.runs import RunDir
from studio.gui.job_bridge import JobBridge
from studio.session import AppState
from studio.gui.widgets import MessageBanner, controls_beside

from .step_views import CompareView, ImageStepViews, PointStepView, points_bounds
from .timeline import NAV_KEYS, Timeline
from .controls import BranchForm, SamplingForm
from .data import TrajectoryData
from .export import ExportForm

POLL_MS = 50  # follow a growing trajectory at 20 Hz
POLL_STEPS = 32  # steps read per tick at most (each: two chunk reads for the statistics)
POINT_VIEW_STD = 2.8  # 2-D view: +-2.8 standard deviations of the data (points are standardised)


class ViewerPanel(QWidget):
    def __init__(self, state: AppState, window=None, parent=None):
        super().__init__(parent)
        self.state, self.window = state, window
        self.run: RunDir | None = None
        self.model = None  # (method, net, data_info) of the chosen checkpoint
        self.data: TrajectoryData | None = None  # the main trajectory
        self.branch: TrajectoryData | None = None
        self.branch_from = 0  # main step the branch starts at
        self._main_kwargs: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}  # trajectory file each bridge writes
        self._shown: int | None = None
        self._stepping = threading.Event()  # read by the branch job on the worker
        self.compare_states: tuple[np.ndarray, np.ndarray] | None = None  # last pair shown
        self.bridge = JobBridge(parent=self)
        self.branch_bridge = JobBridge(parent=self)

        self.banner = MessageBanner()
        self.form = SamplingForm()
        self.branch_form = BranchForm()
        self.export = ExportForm()
        self.timeline = Timeline()
        self.image_views = ImageStepViews()
        self.point_view = PointStepView()
        self.empty = QLabel("Open a run (File > Open run, or train one), then press Run to sample and scrub.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack = QStackedWidget()
        for w in (self.empty, self.image_views, self.point_view):
            self.stack.addWidget(w)
        self.compare = CompareView()
        self.compare_box = QGroupBox("Branch comparison")
        QVBoxLayout(self.compare_box).addWidget(self.compare)
        self.compare_box.hide()

        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 4, 0)
        for title, w in (("Sample", self.form), ("Step / branch from the current step", self.branch_form), ("Export", self.export)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(w)
            column.addWidget(box)
        column.addStretch(1)

        views = self.views_split = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(self.stack)
        views.addWidget(self.compare_box)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 2)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(views, 1)
        right_layout.addWidget(self.timeline)
        split = controls_beside(controls, right, controls_width=270)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)

        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.poll)
        self.form.run_clicked.connect(self.start_sampling)
        self.form.cancel_clicked.connect(self.bridge.cancel)
        self.form.browse_clicked.connect(self.ask_run_dir)
        self.form.open_trajectory_clicked.connect(self.ask_trajectory)
        self.form.model_changed.connect(self.load_model)
        self.branch_form.step_clicked.connect(lambda: self.start_branch(stepping=True))
        self.branch_form.branch_clicked.connect(lambda: self.start_branch(stepping=False))
        self.branch_form.cancel_clicked.connect(self.branch_bridge.cancel)
        self.bridge.events.connect(self._on_events)
        self.bridge.ended.connect(self._on_ended)
        self.branch_bridge.events.connect(self._on_branch_events)
        self.branch_bridge.ended.connect(self._on_branch_ended)
        self.timeline.step_changed.connect(self.show_step)
        self.export.exported.connect(lambda p: self.banner.show_info(f"Wrote {p}"))
        self.export.failed.connect(self.banner.show_error)
        state.run_dir_changed.connect(self.set_run_dir)
        if state.run_dir is not None:
            self.set_run_dir(state.run_dir)

    # --- run and model ------------------------------------------------------------------
    def ask_run_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run directory")
        if path:
            self.state.set_run_dir(path)

    def set_run_dir(self, path: str | Path | None) -> None:
        self.banner.clear()
        self.run, self.model = None, None
        if path is None:
            self.form.set_run(None, [], None, {})
            return
        try:
            run = RunDir(path).require()
            cfg = run.config
            run.data_info()
        except StudioError as exc:
            self.form.set_run(Path(path), [], None, {})
            self.banner.show_error(f"Cannot open run: {exc}")
            return
        self.run = run
        method = cfg.method.get("name", "ddpm")
        self.form.set_run(run.path, run.checkpoints(), method, cfg.sample, sampler_options(cfg))
        self.branch_form.fields.set_method(method, cfg.sample.get("sampler"))
        self.image_views.set_score_visible(method == "ncsn")
        if not run.checkpoints():
            self.banner.show_warning(f"Run {run.path} has no checkpoint yet in {run.checkpoint_dir}; "
                                     "train it (or wait for its first checkpoint), then press Run.")
        else:
            self.load_model()

    def ask_trajectory(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open trajectory", "", "HDF5 trajectory (*.h5 *.hdf5);;All files (*)")
        if path:
            self.open_trajectory(path)

    def open_trajectory(self, path: str | Path) -> bool:
        """Scrub a trajectory file written earlier; its run opens too when it is on this
        machine (for branches and the 2-D field). Its steps come in a tick at a time."""
        if self.bridge.running:
            self.banner.show_error("Sampling is running; cancel it before opening a trajectory.")
            return False
        try:
            data = TrajectoryData(path)
        except (StudioError, OSError, KeyError, ValueError) as exc:
            self.banner.show_error(f"Cannot open trajectory {path}: {exc}")
            return False
        run_dir = data.settings.get("run_dir")
        if run_dir and Path(run_dir).is_dir() and (self.run is None or self.run.path != Path(run_dir)):
            self.state.set_run_dir(Path(run_dir))
        self.stop_branch()
        self._paths["main"] = data.path
        self.set_data(data)
        self._poll.start()
        return True

    def refresh_checkpoints(self) -> None:
        """Checkpoints written since the run was opened (training goes on meanwhile)."""
        if self.run is not None and len(self.run.checkpoints()) != max(0, self.form.checkpoint.count() - 1):
            cfg = self.run.config
            self.form.set_run(self.run.path, self.run.checkpoints(), cfg.method.get("name"), {}, None)

    def load_model(self) -> bool:
        """Load the chosen weights (for the 2-D field, and to name a bad checkpoint now)."""
        self.model = None
        if self.run is None:
            return False
        try:
            method, net, info = self.run.load_model(self.form.weights.currentData(), path=self.form.checkpoint_path())
        except (StudioError, OSError) as exc:
            self.banner.show_error(f"Cannot load the checkpoint: {exc}")
            return False
        self.model = (method, net, info)
        if self.banner.level == "error":
            self.banner.clear()
        if info.kind == "points":
            self.point_view.model = self.model
            std = POINT_VIEW_STD
            corners = info.to_raw(np.array([[-std, -std], [std, std]], dtype=np.float32))
            self.point_view.set_bounds(points_bounds(corners, margin=0.0))
        return True

    def _trajectory_path(self, label: str, settings: dict[str, Any]) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 1_000_000:06d}"
        name = f"viewer_{stamp}_{label}_{settings['sampler']}_seed{settings['seed']}.h5"
        folder = self.run.samples_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return folder / name
        except OSError:  # a read-only run (copied from elsewhere): keep it beside us
            return Path(tempfile.mkdtemp(prefix="studio-viewer-")) / name

    # --- sampling -------------------------------------------------------------------------
    def start_sampling(self) -> None:
        if self.bridge.running:
            return
        if self.run is None:
            self.banner.show_error("Open a run first (File > Open run, or the Open… button).")
            return
        self.refresh_checkpoints()
        if not self.run.checkpoints():
            self.banner.show_error(f"Run {self.run.path} has no checkpoint in {self.run.checkpoint_dir}; train it first.")
            return
        if self.model is None and not self.load_model():
            return
        self.banner.clear()
        self.stop_branch()
        kwargs = self.form.job_kwargs()
        path = self._trajectory_path("main", kwargs)
        run_dir = self.run.path
        self.set_data(None)
        self._main_kwargs, self._paths["main"] = kwargs, path
        try:
            self.bridge.start(lambda control: sample_job(run_dir, trajectory=path, control=control, records=False, **kwargs))
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return
        self.form.set_running(True)
        self._poll.start()

    def _on_events(self, events: list) -> None:
        for event in events:
            if isinstance(event, Started):
                self.set_data(TrajectoryData(self._paths["main"]))

    def _on_ended(self, last) -> None:
        self.form.set_running(False)
        if isinstance(last, Failed):
            self.banner.show_error(f"Sampling failed: {last.message}")
        elif isinstance(last, Finished) and last.result.get("cancelled"):
            self.banner.show_info(f"Sampling cancelled after {last.step} steps; those can still be scrubbed.")
        # the steps not read yet come in at POLL_STEPS a tick (reading a thousand image
        # steps at once would freeze the window for seconds); poll() then enables exports
        self._poll.start()

    @property
    def idle(self) -> bool:
        """No sampling job, and every step it wrote is on the timeline."""
        return not self.bridge.running and not self._poll.isActive()

    def set_data(self, data: TrajectoryData | None) -> None:
        """Show a trajectory (the one being written, or a finished one)."""
        if self.data is not None and self.data is not data:
            self.data.close()
        self.data, self._shown = data, None
        self.timeline.clear()
        self.export.set_data(data, busy=self.bridge.running)
        if data is None:
            self.stack.setCurrentWidget(self.empty)
            self.image_views.clear()
            self.point_view.clear_step()
            return
        self.stack.setCurrentWidget(self.image_views if data.kind == "images" else self.point_view)
        self.compare.set_kind(data.kind)
        self.update_data()

    def update_data(self) -> int:
        data = self.data
        new = data.update(POLL_STEPS) if data is not None else 0
        if not new:
            return 0
        self.timeline.set_count(data.count, follow=not data.complete or self._shown is None)
        self.timeline.set_curves(data.per_step["log_snr"], data.stats)
        if self._shown != self.timeline.step:
            self.show_step(self.timeline.step)
        return new

    def poll(self) -> None:
        """Follow the growing files (timer, while a job runs and until caught up)."""
        behind = self.update_data() == POLL_STEPS
        self.update_branch()
        if self.bridge.running and self.data is not None and self.window is not None:
            self.window.show_progress(f"sampling {self.data.count}/{self.data.total}", self.data.count / max(1, self.data.total))
        if not (self.bridge.running or self.branch_bridge.running or behind):
            self._poll.stop()
            self.export.set_data(self.data, busy=False)
            self._progress_done()

    def _progress_done(self) -> None:
        if self.window is not None and not self.bridge.running:
            self.window.clear_progress()

    # --- showing a step -------------------------------------------------------------------
    def show_step(self, i: int) -> None:
        data = self.data
        if data is None or not 0 <= i < data.count:
            return
        step = data.step(i)
        if data.kind == "images":
            self.image_views.show_step(step)
        else:
            self.point_view.show_step(step, data.paths[: i + 1])
        self._shown = i
        written = "" if data.complete else f" ({data.count}/{data.total} so far)"
        self.timeline.set_label(
            f"step {i}{written}   t = {step['t']:.4f}   λ = {step['log_snr']:.2f}   σ = {step['sigma']:.3g}"
        )

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.key() in NAV_KEYS or event.key() == Qt.Key.Key_Space:
            self.timeline.keyPressEvent(event)
        else:
            super().keyPressEvent(event)

    # --- step mode and branches -----------------------------------------------------------
    def _remaining_grid(self, k: int) -> int:
        s = self.data.settings
        steps = int(s.get("steps") or self.data.total)
        if s.get("sampler") == "langevin":  # records = levels * n_steps_each (+ denoise)
            each = int(s.get("options", {}).get("n_steps_each", 10))
            return steps - k // each
        return steps - k

    def start_branch(self, stepping: bool) -> None:
        """Step mode: one step per call; otherwise run the branch to its end."""
        if self.branch_bridge.running:  # the paused step-mode job: go on
            if not stepping:
                self._stepping.clear()
            self.branch_bridge.resume()
            return
        data = self.data
        if data is None or data.count == 0 or self.run is None:
            self.banner.show_error("Run the sampler first; a branch starts from a step of its trajectory.")
            return
        k = self.timeline.step
        step = data.step(k)
        try:
            kwargs = self.branch_form.job_kwargs(self._remaining_grid(k), data.settings)
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return
        path = self._trajectory_path(f"branch{k}", kwargs)
        run_dir, main = self.run.path, self._main_kwargs
        x_init, t_start = step["x_t"].astype(np.float32), float(step["t"])
        self._set_branch(None)
        self.branch_from, self._paths["branch"] = k, path
        self._stepping.set() if stepping else self._stepping.clear()

        def factory(control):
            job = sample_job(run_dir, trajectory=path, control=control, t_start=t_start, x_init=x_init,
                             checkpoint=main.get("checkpoint", "ema"), checkpoint_path=main.get("checkpoint_path"), **kwargs)
            return self._gated(job, control)

        self.branch_bridge.start(factory)
        self.banner.clear()
        self.branch_form.cancel_button.setEnabled(True)
        self.branch_form.status.setText(f"Branch from step {k} (t = {t_start:.4f}) with {kwargs['sampler']}, "
                                        f"{kwargs['steps']} steps, seed {kwargs['seed']}.")
        self._poll.start()

    def _gated(self, job, control):
        """Runs on the worker: in step mode, pause after each step past the first (the
        first record is the starting state itself), so each click adds one step."""
        for event in job:
            if isinstance(event, SampleStep):
                if self._stepping.is_set() and event.index > 0:
                    control.pause()
                continue  # the file has it; the queue need not carry the arrays
            yield event

    def _on_branch_events(self, events: list) -> None:
        for event in events:
            if isinstance(event, Started):
                self._set_branch(TrajectoryData(self._paths["branch"]))

    def _on_branch_ended(self, last) -> None:
        self.update_branch()
        self.branch_form.cancel_button.setEnabled(False)
        self._stepping.clear()
        if isinstance(last, Failed):
            self.banner.show_error(f"Branch failed: {last.message}")
        elif self.branch is not None:
            self.branch_form.status.setText(self.branch_form.status.text().split(" — ")[0] + f" — done ({self.branch.count} steps).")
            self.show_compare()

    def _set_branch(self, branch: TrajectoryData | None) -> None:
        if self.branch is not None:
            self.branch.close()
        self.branch = branch
        if branch is not None and not self.compare_box.isVisible():
            total = sum(self.views_split.sizes()) or 600
            self.views_split.setSizes([total * 3 // 5, total * 2 // 5])  # the step stays the larger view
        self.compare_box.setVisible(branch is not None)

    def stop_branch(self) -> None:
        if self.branch_bridge.running:
            self.branch_bridge.stop_and_wait(10)
        self._set_branch(None)

    def update_branch(self) -> None:
        if self.branch is not None and self.branch.update():
            self.show_compare()

    def show_compare(self) -> None:
        """Main run and branch side by side: at the same number of steps after the
        branch point, or both final samples once both ended."""
        b, m = self.branch, self.data
        if b is None or m is None or b.count == 0:
            return
        b_final, m_final = b.samples(), m.samples()
        if b_final is not None and m_final is not None:
            states = (m_final, b_final)
            titles = ("main run · final samples", f"branch · final samples ({b.settings['sampler']}, seed {b.settings['seed']})")
        else:
            j = b.count - 1
            i = min(self.branch_from + j, m.count - 1)
            bs, ms = b.step(j), m.step(i)
            states = (ms["x_t"].astype(np.float32), bs["x_t"].astype(np.float32))
            titles = (f"main run · step {i} (t = {ms['t']:.3f})",
                      f"branch · step {j} of {b.total} (t = {bs['t']:.3f})")
        self.compare.show_pair(states, titles, self.point_view.bounds if m.kind == "points" else None)
        self.compare_states = states

    # --- app hooks ------------------------------------------------------------------------
    def export_plots(self, folder: Path) -> list[Path]:
        """The current step's views and the timeline plots (nothing before a run)."""
        if self.data is None:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, widget in (("viewer_step", self.stack), ("viewer_timeline", self.timeline)):
            path = folder / f"{name}.png"
            if widget.grab().save(str(path)):
                out.append(path)
        return out

    def shutdown(self) -> None:
        self._poll.stop()
        for bridge in (self.bridge, self.branch_bridge):
            bridge.stop_and_wait(10)
        self._set_branch(None)
        if self.data is not None:
            self.data.close()
            self.data = None
