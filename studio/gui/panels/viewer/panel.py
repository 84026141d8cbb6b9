"""The reverse-process viewer: a view over ``studio.session.SamplingSession``. Sample
from a run, scrub through every step while the trajectory is still being written, step or
branch from any step, export.

The session holds the run (the one ``AppState`` names: opened anywhere, or announced by
a training job once it started), its checkpoints (each new one offered as it lands, so a
model can be sampled while it trains), the model and the two jobs; the panel shows them.

Sampling runs ``engine.jobs.sample_job`` through a ``JobBridge`` with ``records=False``:
the steps go to an HDF5 file (one chunk per step) and never through the event queue,
so a 1000-step run of 64 images cannot pile up in memory. A timer follows the file as
it grows (``TrajectoryData.update``); showing a step reads that step's chunks only.

Branching re-runs the sampler from the scrubbed state (``x_init``, ``t_start``) into a
second file; in step mode the job pauses itself after each step (``JobControl.pause``
from the worker, so the next ``checkpoint()`` blocks) and each click resumes it once.
"""

from __future__ import annotations

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
from studio.engine.runs import RunDir
from studio.gui.job_bridge import JobBridge
from studio.gui.widgets import MessageBanner, controls_beside
from studio.session import AppState, SamplingSession
from studio.session.sampling import history_depth

from .step_views import CompareView, ImageStepViews, PointStepView, points_bounds
from .timeline import NAV_KEYS, Timeline
from .controls import BranchForm, SamplingForm
from .data import TrajectoryData
from .export import ExportForm

POLL_MS = 50  # follow a growing trajectory at 20 Hz
POLL_STEPS = 32  # steps read per tick at most (each: two chunk reads for the statistics)
CURVES_S = 0.25  # the timeline's curves redrawn at most 4 times a second while a trajectory grows
POINT_VIEW_STD = 2.8  # 2-D view: +-2.8 standard deviations of the data (points are standardised)


class ViewerPanel(QWidget):
    def __init__(self, state: AppState, window=None, parent=None, session: SamplingSession | None = None):
        super().__init__(parent)
        self.state, self.window = state, window
        self.session = session or SamplingSession(state)
        self.data: TrajectoryData | None = None  # the main trajectory
        self.branch: TrajectoryData | None = None
        self.branch_from = 0  # main step the branch starts at
        self._main_kwargs: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}  # trajectory file each bridge writes
        self._shown: int | None = None
        self._curves_time = 0.0  # when the timeline's curves were last drawn
        self._stepping = threading.Event()  # read by the branch job on the worker
        self.compare_states: tuple[np.ndarray, np.ndarray] | None = None  # last pair shown
        self.bridge = JobBridge(parent=self, driver=self.session.main)
        self.branch_bridge = JobBridge(parent=self, driver=self.session.branch)

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
        self.point_view.field_failed.connect(self._on_field_failed)
        self.export.exported.connect(lambda p: self.banner.show_info(f"Wrote {p}"))
        self.export.failed.connect(self.banner.show_error)
        state.plugins_changed.connect(self.export.fill_formats)  # plugins' trajectory exporters
        state.plugins_changed.connect(self._on_plugins_changed)  # and their samplers
        self.session.run_changed.connect(self._on_run_changed)
        self.session.open_failed.connect(self._on_open_failed)
        self.session.checkpoints_changed.connect(self._on_checkpoints_changed)
        if self.session.run is not None:
            self._on_run_changed(self.session.run)
        elif state.run_dir is not None:
            self.session.open(state.run_dir)

    # --- what the session holds ---------------------------------------------------------------
    @property
    def run(self) -> RunDir | None:
        return self.session.run

    @property
    def model(self):
        return self.session.model  # (method, net, data_info) of the chosen checkpoint

    # --- run and model ------------------------------------------------------------------
    def ask_run_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run directory")
        if path:
            self.state.set_run_dir(path)

    def set_run_dir(self, path: str | Path | None) -> None:
        """Sample from this run (what File > Open run does, through the state)."""
        self.session.open(path)

    def _on_open_failed(self, path: Path, message: str) -> None:
        self.form.set_run(Path(path), [], None, {})
        self.banner.show_error(f"Cannot open run: {message}")

    def _on_run_changed(self, run: RunDir | None) -> None:
        self.banner.clear()
        if run is None:
            self.form.set_run(None, [], None, {})
            return
        cfg = run.config
        method = cfg.method.get("name", "ddpm")
        self.form.set_run(run.path, run.checkpoints(), method, cfg.sample, sampler_options(cfg), points=run_holds_points(run))
        self.branch_form.fields.set_method(method, cfg.sample.get("sampler"))
        self.image_views.set_score_visible(method == "ncsn")
        if not run.checkpoints():
            self.banner.show_warning(f"Run {run.path} has no checkpoint yet in {run.checkpoint_dir}; "
                                     "train it (or wait for its first checkpoint), then press Run.")
        else:
            self.load_model()

    def _on_plugins_changed(self, *_: object) -> None:
        """Samplers a plugin registered join both lists (those of the run's method); the
        samplers picked stay picked."""
        if self.run is None:
            return
        method = self.run.config.method.get("name", "ddpm")
        self.form.fields.set_method(method)
        self.branch_form.fields.set_method(method)

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
        self.session.refresh_checkpoints()

    def _on_checkpoints_changed(self, checkpoints: list[Path]) -> None:
        """A new checkpoint landed: offered in the list; "latest" (the default) means it,
        and a user's pick of a particular one is kept."""
        picked = self.form.checkpoint_path()
        had_none = self.form.checkpoint.count() == 0
        self.form.set_checkpoints(checkpoints, keep=picked)
        if had_none and checkpoints:  # the run's first checkpoint: ready to sample
            if self.banner.level == "warning":
                self.banner.clear()
            self.load_model()
        elif picked is None and not self.bridge.running:
            self.load_model()  # "latest" moved on

    def load_model(self) -> bool:
        """Load the chosen weights (for the 2-D field, and to name a bad checkpoint now)."""
        if self.run is None:
            return False
        try:
            method, net, info = self.session.load_model(self.form.weights.currentData(), path=self.form.checkpoint_path())
        except (StudioError, OSError) as exc:
            self.banner.show_error(f"Cannot load the checkpoint: {exc}")
            return False
        if self.banner.level == "error":
            self.banner.clear()
        if info.kind == "points":
            self.point_view.model = self.model
            std = POINT_VIEW_STD
            corners = info.to_raw(np.array([[-std, -std], [std, std]], dtype=np.float32))
            self.point_view.set_bounds(points_bounds(corners, margin=0.0))
        return True

    # --- sampling -------------------------------------------------------------------------
    def start_sampling(self) -> None:
        if self.bridge.running:
            return
        try:
            self.session.require_checkpoint()
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return
        if self.model is None and not self.load_model():
            return
        self.stop_branch()
        try:
            kwargs = self.form.job_kwargs()
            path = self.session.start_sampling(kwargs)  # bad input is named here, nothing written
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return
        self.banner.clear()
        self.set_data(None)
        self._main_kwargs, self._paths["main"] = kwargs, path
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
        self.timeline.set_span(data.total)
        self._curves_time = 0.0
        self.update_data()

    def update_data(self) -> int:
        data = self.data
        new = data.update(POLL_STEPS) if data is not None else 0
        if not new:
            return 0
        self.timeline.set_count(data.count, follow=not data.complete or self._shown is None)
        if data.kind == "points":
            self.point_view.set_times(data.per_step["t"][: data.count])  # the field worker batches these
        self.draw_curves(force=data.complete)
        if self._shown != self.timeline.step:
            self.show_step(self.timeline.step)
        return new

    def draw_curves(self, force: bool = False) -> None:
        """The timeline's curves of the steps read so far: at most every CURVES_S while
        the file grows (redrawing four plots on each 50 ms poll kept the GUI thread busy)."""
        now = time.monotonic()
        if self.data is None or not (force or now - self._curves_time >= CURVES_S):
            return
        self._curves_time = now
        self.timeline.set_curves(self.data.per_step["log_snr"], self.data.stats)

    def poll(self) -> None:
        """Follow the growing files (timer, while a job runs and until caught up)."""
        behind = self.update_data() == POLL_STEPS
        self.update_branch()
        if self.bridge.running and self.data is not None and self.window is not None:
            self.window.show_progress(f"sampling {self.data.count}/{self.data.total}", self.data.count / max(1, self.data.total))
        if not (self.bridge.running or self.branch_bridge.running or behind):
            self._poll.stop()
            self.draw_curves(force=True)  # every step read (a cancelled run ends short of total)
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

    def _on_field_failed(self, message: str) -> None:
        self.banner.show_warning(f"The score field cannot be drawn: {message}")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if event.key() in NAV_KEYS or event.key() == Qt.Key.Key_Space:
            self.timeline.keyPressEvent(event)
        else:
            super().keyPressEvent(event)

    # --- step mode and branches -----------------------------------------------------------
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
        x_init, t_start = step["x_t"].astype(np.float32), float(step["t"])
        self._stepping.set() if stepping else self._stepping.clear()
        try:  # the sampler says how many grid points continue its grid from record k
            kwargs = self.branch_form.job_kwargs(self.session.branch_steps(data.settings, k), data.settings)
            # a multistep sampler (DPM-Solver++(2M), (3M)) continues at its order from records k-1, k-2
            prev = [data.step(k - j) for j in range(1, min(k, history_depth(kwargs["sampler"])) + 1)]
            history = {"x0_prev": [p["x0_hat"].astype(np.float32) for p in prev], "t_prev": [float(p["t"]) for p in prev]}
            path = self.session.start_branch(self._main_kwargs or data.settings, k, x_init, t_start, kwargs, gate=self._gated,
                                             **(history if prev else {}))
        except StudioError as exc:
            self.banner.show_error(str(exc))
            return
        self._set_branch(None)
        self.branch_from, self._paths["branch"] = k, path
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
        self.point_view.model = None  # no further field batches start on the worker
        for bridge in (self.bridge, self.branch_bridge):
            bridge.stop_and_wait(10)
        self._set_branch(None)
        if self.data is not None:
            self.data.close()
            self.data = None


def run_holds_points(run: RunDir) -> bool:
    """Whether the run trains on points (its data.json, written when training starts)."""
    try:
        return run.data_info().kind == "points"
    except StudioError:
        return False
