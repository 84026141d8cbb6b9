"""The training monitor: a view over ``studio.session.TrainingSession``.

The session holds the job lifecycle (start, resume, pause, stop, how it ended), the run
on screen and its hand-off to the rest of the studio; this panel shows it. The job's
events go into a ``TrainingHistory`` (numpy buffers, no drawing) and a QTimer redraws
the plots from it at display rate, so the GUI thread does a few milliseconds of work per
frame however fast training goes. A run written by another process (the CLI, a cluster
job) is followed read-only by the session's ``RunWatch`` through the same history and
plots; when its writer dies the panel says stopped and Resume run continues it here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.networks.embedding import clamp_log_snr
from studio.engine.events import SCHEDULE_TIMES, CheckpointSaved, Failed, Finished, Log, Preview, Progress, Started
from studio.engine.config import schedule_from_section
from studio.engine.runs import RunDir, schedule_curve
from studio.engine.trainer import warm_up_in_background, warm_up_pending
from studio.gui.job_bridge import JobBridge
from studio.gui.widgets import ImageGridView, MessageBanner, ScatterView, controls_beside
from studio.session import AppState, TrainingSession, default_runs_root, new_run_dir

from .buffers import TrainingHistory
from .form import TRAIN_FIELDS, TrainingForm
from .log import EventLog
from .plots import TrainingPlots

PLOT_INTERVAL_MS = 40  # one plot redrawn a tick (round robin): each of the 8 about 3 times a second
CLOSE_TIMEOUT_S = 120.0
WARM_UP_POLL_MS = 100  # Start pressed during the app's background warm-up retries this often


FOLLOW_MS = 100  # the session's RunWatch reads the run at most every watch.interval_s


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def format_eta(seconds: float) -> str:
    if not seconds == seconds or seconds == float("inf"):  # NaN or inf
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def memory_text(memory: dict[str, Any]) -> str:
    mb = 1024 * 1024
    if memory.get("kind") == "cuda":
        text = f"CUDA {memory.get('allocated', 0) / mb:.0f} MB (peak {memory.get('peak', 0) / mb:.0f} MB)"
        if "utilization" in memory:
            text += f" · GPU {memory['utilization']:.0f}%"
        return text
    if memory.get("kind") == "cpu":
        return f"RAM {memory.get('rss', 0) / mb:.0f} MB · CPU {memory.get('cpu_percent', 0):.0f}%"
    return ""


class TrainingPanel(QWidget):
    def __init__(self, state: AppState, window=None, parent=None, session: TrainingSession | None = None):
        super().__init__(parent)
        self.state, self.window = state, window
        self.session = session or TrainingSession(state)
        self.history = TrainingHistory()
        self.bridge = JobBridge(interval_ms=50, parent=self, driver=self.session.driver)
        self._batch_size = 1
        self._status_time = 0.0

        # --- left: run control, config ---------------------------------------------------
        self.form = TrainingForm(state)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train a new run with this config")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved")
        self.open_button = QPushButton("Open run…")
        self.open_button.setToolTip("Show a run directory; one another process writes is followed live")
        self.continue_button = QPushButton("Resume run")
        self.continue_button.setToolTip("Continue the run on screen from its latest checkpoint, up to 'steps'")
        self.load_button = QPushButton("Load TOML…")
        self.save_button = QPushButton("Save TOML…")
        self.save_button.setToolTip("The CLI's format: diffusion-studio train CONFIG.toml")
        self.runs_root = QLineEdit(str(default_runs_root()))
        self.runs_root.setToolTip("New runs go into a new folder here")
        self.runs_button = QPushButton("…")
        self.runs_button.setMaximumWidth(30)
        self.banner = MessageBanner()
        self.status_label = QLabel("idle")
        self.status_label.setWordWrap(True)
        self.run_label = QLabel("no run")
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        left = QWidget()
        col = QVBoxLayout(left)
        for buttons in ((self.start_button, self.pause_button, self.stop_button),
                        (self.open_button, self.continue_button),
                        (self.load_button, self.save_button)):
            row = QHBoxLayout()
            for b in buttons:
                row.addWidget(b)
            col.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("runs in"))
        row.addWidget(self.runs_root, 1)
        row.addWidget(self.runs_button)
        col.addLayout(row)
        col.addWidget(self.run_label)
        col.addWidget(self.status_label)
        col.addWidget(self.banner)
        col.addWidget(self.form)
        col.addStretch(1)

        # --- right: plots, preview, log ---------------------------------------------------
        self.plots = TrainingPlots()
        self.preview_images = ImageGridView()
        self.preview_points = ScatterView(title="samples (EMA)")
        self.preview = QStackedWidget()
        self.preview.addWidget(self.preview_images)
        self.preview.addWidget(self.preview_points)
        self.preview.setMinimumHeight(180)
        self.log = EventLog()
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.preview)
        bottom.addWidget(self.log)
        bottom.setSizes([300, 600])
        self.bin_by = QComboBox()
        self.bin_by.addItem("log-SNR λ", "log_snr")
        self.bin_by.addItem("time t", "t")
        self.bin_by.setToolTip("Bin the loss by noise level by log-SNR or by the schedule's time t "
                               "(curve and heatmap)")
        self.bin_by.currentIndexChanged.connect(self._on_bin_by)
        plots_box = QWidget()
        plots_column = QVBoxLayout(plots_box)
        plots_column.setContentsMargins(0, 0, 0, 0)
        plots_column.setSpacing(2)
        bin_row = QHBoxLayout()
        bin_row.addStretch(1)
        bin_row.addWidget(QLabel("loss by noise level, binned by"))
        bin_row.addWidget(self.bin_by)
        plots_column.addLayout(bin_row)
        plots_column.addWidget(self.plots, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(plots_box)
        right.addWidget(bottom)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        split = controls_beside(left, right, controls_width=300)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)

        self._plot_timer = QTimer(self)
        self._plot_timer.setInterval(PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._tick)
        self._follow_timer = QTimer(self)
        self._follow_timer.setInterval(FOLLOW_MS)
        self._follow_timer.timeout.connect(self.session.watch.poll)

        # --- wiring -------------------------------------------------------------------------
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.open_button.clicked.connect(self._ask_open)
        self.continue_button.clicked.connect(self.continue_run)
        self.load_button.clicked.connect(self._ask_load)
        self.save_button.clicked.connect(self._ask_save)
        self.runs_button.clicked.connect(self._ask_runs_root)
        self.form.preset.activated.connect(self._on_preset)
        self.form.edited.connect(self._on_form_edited)
        self.bridge.events.connect(self.on_events)
        self.bridge.ended.connect(self.on_ended)
        self.bridge.paused_changed.connect(self._on_paused)
        s = self.session
        s.followed.connect(self._on_followed)
        s.watch.rows.connect(lambda rows: self.history.add_rows(rows, self._batch_size))
        s.watch.preview_found.connect(lambda path: self._show_preview_png(read_png(path)))
        s.status_changed.connect(self._on_follow_status)
        s.error.connect(self._on_follow_failed)
        s.watch.checkpoint_found.connect(self._on_checkpoint_file)

        self._update_buttons()
        if state.run_dir is not None and s.run_dir is None:
            self.open_run(state.run_dir)

    # --- what the session holds ---------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.session.mode  # idle | training | following

    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir  # the run on screen (own job or followed)

    @property
    def _config(self) -> dict[str, Any]:
        return self.session.config  # sections of the run on screen

    # --- starting jobs ------------------------------------------------------------------------
    def new_run_dir(self, cfg) -> Path:
        return new_run_dir(cfg, self.runs_root.text().strip() or default_runs_root())

    def start(self) -> bool:
        """Start a new run with the form's config; bad input is shown at once, naming the
        key, and nothing is written (the engine checks it at the call)."""
        if self.bridge.running:
            return False
        try:
            cfg = self.form.config()
            if self.window is not None and self.window.loading():
                warm_up_in_background()  # the app warms up once every panel is in: Start came first
            if warm_up_pending():  # train_job builds its optimizer here: wait for the warm-up off this thread
                self.status_label.setText("starting… (the optimizer is warming up)")
                self.start_button.setEnabled(False)
                QTimer.singleShot(WARM_UP_POLL_MS, self.start)
                return True
            self.session.start(cfg, self.new_run_dir(cfg))
        except StudioError as e:
            self._show_config_error(e)
            self._update_buttons()  # a retry after the warm-up may fail with Start disabled
            return False
        return self._launched()

    def resume_run(self, path: str | Path) -> bool:
        """Show an earlier run and continue it from its latest checkpoint."""
        return self.open_run(path) and self.continue_run()

    def continue_run(self) -> bool:
        """Continue the run on screen (its own config.toml) up to the form's steps."""
        if self.bridge.running or self.run_dir is None:
            return False
        try:
            self.session.resume(steps=self.form.fields["steps"].value())
        except StudioError as e:
            self.banner.show_error(str(e))
            return False
        return self._launched()

    def _launched(self) -> bool:
        """The session started a job (the run is announced when it says Started)."""
        self._follow_timer.stop()
        self.banner.clear()
        self.form.mark_invalid(None)
        sections = self._config
        self._batch_size = int(sections.get("train", {}).get("batch_size", 1))
        train = sections.get("train", {})
        self.history.clear(int(train.get("steps", 0)), int(train.get("log_every", 1)))
        self._show_schedule(None, initial=True)
        self.run_label.setText(f"run: {self.run_dir}")
        self.status_label.setText("starting…")
        self._update_buttons()
        self._plot_timer.start()
        return True

    def _show_config_error(self, e: Exception) -> None:
        message = str(e)
        self.banner.show_error(message)
        key = next((k for k in TRAIN_FIELDS if message.startswith(f"[train] {k} ") or f"[train] {k} =" in message), None)
        self.form.mark_invalid(key)

    # --- run control ----------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.bridge.paused:
            self.bridge.resume()
        else:
            self.bridge.pause()

    def stop(self) -> None:
        if self.bridge.running:
            self.log.add("stopping: the job saves a checkpoint after the current step")
            self.bridge.cancel()

    def _on_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.log.add("paused" if paused else "resumed")
        self.status_label.setText(("paused · " if paused else "") + self._progress_text())

    # --- events of our own job ------------------------------------------------------------------
    def on_events(self, batch: list) -> None:
        for event in batch:
            if isinstance(event, Progress):
                self.history.add_progress(event)  # the common case: a few array ops, no drawing
                if event.schedule_log_snr is not None:  # a learned schedule moved (about 1/s)
                    self.plots.set_schedule(SCHEDULE_TIMES, clamp_log_snr(event.schedule_log_snr).numpy())
                    self.history.set_schedule(SCHEDULE_TIMES, event.schedule_log_snr)
            elif isinstance(event, Started):
                self._on_started(event)
            elif isinstance(event, Preview):
                self._show_preview(event)
            elif isinstance(event, CheckpointSaved):
                self.log.add(f"checkpoint at step {event.step}: {Path(event.path).name}")
                self._on_checkpoint_file(event.path)
            elif isinstance(event, Log):
                self.log.add(event.message, event.level)
            elif isinstance(event, Finished):
                if event.result.get("cancelled"):
                    self.log.add(f"stopped at step {event.step}; checkpoint {event.result.get('checkpoint')}")
                else:
                    self.log.add(f"finished at step {event.step}; checkpoint {event.result.get('checkpoint')}")
            elif isinstance(event, Failed):
                if event.nan:
                    text = f"NaN stop at step {event.step}: {event.message}"
                else:
                    text = f"training failed: {event.message}"
                self.log.add(text, "error")
                self.banner.show_error(text)

    def _on_started(self, event: Started) -> None:
        self._batch_size = int(event.config.get("train", {}).get("batch_size", 1))
        self.history.clear(event.total_steps, int(event.config.get("train", {}).get("log_every", 1)))
        self._show_schedule(None, initial=True)  # before the rows: loss binned by t needs it
        if event.start_step > 0:  # a resumed run: its past first (the job cut the rows after its checkpoint)
            rows = RunDir(event.run_dir).metrics()
            self.history.add_rows([r for r in rows if r["step"] <= event.start_step], self._batch_size)
        where = f" from step {event.start_step}" if event.start_step else ""
        self.log.add(f"training {event.total_steps} steps{where} into {event.run_dir}")

    def on_ended(self, last) -> None:
        self.refresh()
        self._plot_timer.stop()
        if isinstance(last, Finished):
            word = "stopped" if last.result.get("cancelled") else "finished"
            self.status_label.setText(f"{word} at step {last.step} · " + self._progress_text())
        else:
            self.status_label.setText(f"failed: {last.message}")
        if self.window is not None:
            self.window.clear_progress()
        self.pause_button.setText("Pause")
        self._update_buttons()

    # --- following a run another process writes ----------------------------------------------
    def open_run(self, path: str | Path) -> bool:
        """Show a run directory: its past metrics, previews and schedule; followed live
        while another process writes it. Read-only."""
        if self.bridge.running:
            self.banner.show_warning("a training job is running here; stop it to open another run")
            return False
        try:
            run = self.session.follow(path)  # _on_followed resets the view, then the rows come
        except StudioError as e:
            self.banner.show_error(f"cannot open run {path}: {e}")
            return False
        self.log.add(f"opened run {run.path} ({len(self.history.series['loss'])} steps of metrics)")
        self._on_follow_status(self.session.watch.status)
        return True

    def _on_followed(self, run: RunDir) -> None:
        """The session opened a run read-only: the form, schedule and (empty) plots
        before its rows arrive."""
        cfg = run.config
        self.banner.clear()
        self.preview_images.clear_images()  # the watch shows the run's newest preview
        self._batch_size = int(cfg.train.get("batch_size", 1))
        self.history.clear(int(cfg.train.get("steps", 0)), int(cfg.train.get("log_every", 1)))
        self.form.origin = f"run {run.path.name!r}"
        self.form.set_config(cfg)
        self._show_schedule(None, initial=True)
        self.run_label.setText(f"run: {run.path}")
        self._plot_timer.start()
        self._follow_timer.start()

    def _on_follow_status(self, status: dict[str, Any]) -> None:
        if self.mode != "following" or not status:
            return
        state, step = status.get("follow", status.get("state", "unknown")), status.get("step", "?")
        if state == "running":
            text = f"following (read-only): running at step {step}"
        elif state == "stopped":
            text = (f"stopped at step {step}: the process writing it (pid {status.get('pid', '?')}) is gone; "
                    "Resume run continues it here")
        else:
            text = f"{state} at step {step} (read-only view)"
        self.status_label.setText(text + " · " + self._progress_text())
        if status.get("message"):
            self.log.add(f"run status: {state}: {status['message']}", "error" if state == "failed" else "info")
        self._update_buttons()

    def _on_follow_failed(self, message: str) -> None:
        self.banner.show_error(message)
        self.log.add(message, "error")

    # --- drawing ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw every plot whose data changed (the end of a job, tests, export)."""
        self.plots.refresh(self.history, force=True)
        self._update_status()

    def _tick(self) -> None:
        """The plot timer: one changed plot (training_plots.refresh says why), the status line."""
        now = time.monotonic()
        if self.plots.refresh(self.history, limit=1) and now - self._status_time > 0.25:
            self._status_time = now  # a label's text change re-lays the form out: 4 Hz is plenty
            self._update_status()

    def _update_status(self) -> None:
        if self.mode == "training" and not self.bridge.paused:
            self.status_label.setText(self._progress_text())
            if self.window is not None and self.history.total:
                self.window.show_progress(f"training {self.history.step}/{self.history.total}",
                                          self.history.step / self.history.total)

    def _progress_text(self) -> str:
        h = self.history
        parts = [f"step {h.step} / {h.total}" if h.total else f"step {h.step}"]
        p = h.last
        if p is not None:
            parts += [f"loss {p.loss_smooth:.4g}", f"{p.samples_per_s:,.0f} samples/s", f"ETA {format_eta(p.eta_s)}"]
            mem = memory_text(p.memory)
            if mem:
                parts.append(mem)
        elif len(h.series["samples_per_s"]):
            parts.append(f"{h.series['samples_per_s'].y[-1]:,.0f} samples/s")
        return " · ".join(parts)

    def _on_bin_by(self, index: int) -> None:
        self.plots.set_bin_by(self.bin_by.itemData(index))
        self.plots.refresh(self.history)  # draws the two re-binned plots, also when no run goes on

    def _show_schedule(self, checkpoint: str | None, initial: bool = False) -> None:
        if not self._config:
            return
        try:
            if checkpoint is None:  # as configured (the run's folder may not exist yet)
                section, method = self._config.get("schedule", {}), self._config.get("method", {}).get("name", "ddpm")
                t, lam = schedule_curve(schedule_from_section(section, method))
            else:
                t, lam = RunDir(self.run_dir).schedule_curve(checkpoint)
        except (StudioError, OSError, RuntimeError, TypeError, ValueError) as e:
            self.log.add(f"cannot draw the schedule: {e}", "warning")
            return
        self.plots.set_schedule(t, lam, initial=initial)
        self.history.set_schedule(t, lam)

    def _on_checkpoint_file(self, path: str) -> None:
        family = self._config.get("schedule", {}).get("family", "")
        if family == "vdm_learned":  # the learned schedule as of this checkpoint
            self._show_schedule(path)

    def _show_preview(self, event: Preview) -> None:
        if event.images is not None:
            self.preview.setCurrentWidget(self.preview_images)
            self.preview_images.set_images(event.images, titles=None)
        elif event.points is not None:
            self.preview.setCurrentWidget(self.preview_points)
            self.preview_points.set_points(event.points)
        self.log.add(f"preview at step {event.step}")

    def _show_preview_png(self, image) -> None:
        self.preview.setCurrentWidget(self.preview_images)
        self.preview_images.set_images(image[None], columns=1)

    # --- buttons ------------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        training = self.bridge.running
        live = self.session.live_elsewhere
        self.start_button.setEnabled(not training)
        self.pause_button.setEnabled(training)
        self.stop_button.setEnabled(training)
        self.open_button.setEnabled(not training)
        self.continue_button.setEnabled(not training and not live and self.run_dir is not None)
        self.load_button.setEnabled(not training)
        self.form.setEnabled(not training)

    def _on_form_edited(self) -> None:
        self.form.mark_invalid(None)

    def _on_preset(self, index: int) -> None:
        try:
            self.form.apply_preset(index)
        except StudioError as e:
            self.banner.show_error(str(e))
        else:
            self.banner.clear()

    # --- files ------------------------------------------------------------------------------------
    def load_toml(self, path: str | Path) -> bool:
        try:
            self.form.load_toml(path)
        except StudioError as e:
            self._show_config_error(e)
            return False
        self.banner.show_info(f"loaded {path}")
        return True

    def save_toml(self, path: str | Path) -> bool:
        try:
            self.form.save_toml(path)
        except StudioError as e:
            self._show_config_error(e)
            return False
        except OSError as e:
            self.banner.show_error(f"cannot write {path}: {e}")
            return False
        self.banner.show_info(f"saved {path}; run it with: diffusion-studio train {path}")
        return True

    def _ask_open(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run directory", self.runs_root.text())
        if path:
            self.open_run(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load config", "", "Config TOML (*.toml)")
        if path:
            self.load_toml(path)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save config", "config.toml", "Config TOML (*.toml)")
        if path:
            self.save_toml(path)

    def _ask_runs_root(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for new runs", self.runs_root.text())
        if path:
            self.runs_root.setText(path)

    def export_plots(self, folder: str | Path) -> list[Path]:
        self.refresh()
        return [self.plots.export_png(Path(folder) / "training_plots.png")]

    # --- closing ----------------------------------------------------------------------------------
    def ask_stop_on_close(self) -> bool:
        """Asked when the window closes during training (tests replace it)."""
        answer = QMessageBox.question(
            self, "Training is running",
            "A training job is running. Stop it, save a checkpoint and close?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def confirm_close(self) -> bool:
        """MainWindow.closeEvent asks each panel: no job, or the user agreed and the job
        stopped with a checkpoint, gives True; False keeps the window open."""
        if not self.bridge.running:
            return True
        if not self.ask_stop_on_close():
            return False
        self.log.add("closing: stopping the job and saving a checkpoint")
        if not self.bridge.stop_and_wait(CLOSE_TIMEOUT_S):
            self.banner.show_error(f"the training job did not stop within {CLOSE_TIMEOUT_S:.0f} s")
            return False
        return True

    def shutdown(self) -> None:
        if self.bridge.running:
            self.bridge.stop_and_wait(CLOSE_TIMEOUT_S)
        self.session.watch.stop()
        self._follow_timer.stop()
        self._plot_timer.stop()
