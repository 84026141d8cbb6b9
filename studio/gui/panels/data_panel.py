"""The data panel: choose a source, preprocess, preview and read statistics.

Sources come from the ``DATASETS`` registry (toy 2-D sets, digits, image folder,
.npy/.npz, HDF5 and whatever plugins add). Every load runs on a worker thread
(superqt ``create_worker``) with progress and cancel, so a big folder never freezes the
window; a stale load (the user changed options meanwhile) is dropped. Bad files and
shapes are shown in the banner naming the file, and the last good data stays.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

import studio.core.data as core_data
from studio.core.data import LoadCancelled, list_hdf5_datasets, load_dataset, toy_names
from studio.core.data.normalise import NORMALISATIONS, normalise
from studio.core.data import toy as _toy  # noqa: F401 - registers the toy sets in DATASETS
from studio.core.data.base import Dataset
from studio.core.errors import StudioError
from studio.core.registry import DATASETS
from studio.gui.state import AppState
from studio.gui.widgets import ImageGridView, MessageBanner, ScatterView

PREVIEW_IMAGES = 64
PREVIEW_POINTS = 5000
RELOAD_DELAY_MS = 300
RESOLUTIONS = (8, 16, 28, 32, 64)
PREVIEW_PER_CLASS, PREVIEW_CLASSES = 6, 10  # labelled images: a column per class
SPLITS = ("train", "test", "all")  # the cifar source's batches
FOLDER_SOURCES = ("folder", "imagefolder", "cifar")  # Browse… picks a folder
FILE_LABELS = {"digits": "digits (8x8, scikit-learn)", "folder": "image folder",
               "imagefolder": "image folder, a subfolder per class", "idx": "MNIST / Fashion-MNIST (IDX)",
               "cifar": "CIFAR-10 / CIFAR-100 (binary batches)", "array": "NumPy array (.npy / .npz)",
               "hdf5": "HDF5 dataset"}


def _load(generation: int, source: str, options: dict, cancel: threading.Event, progress: list) -> tuple:
    """Runs on the worker thread: never raises, returns (generation, dataset, error)."""

    def report(done: int, total: int) -> None:
        progress[:] = [done, total]  # read by the GUI thread's timer

    try:
        ds = load_dataset(source, **options, progress=report, cancelled=cancel.is_set)
        return generation, ds, None
    except LoadCancelled:
        return generation, None, "cancelled"
    except StudioError as e:
        return generation, None, str(e)
    except Exception as e:  # a loader bug or an unexpected file: name it, keep the app up
        where = options.get("path", source)
        return generation, None, f"cannot load {where}: {type(e).__name__}: {e}"


class DataPanel(QWidget):
    def __init__(self, state: AppState, parent=None):
        super().__init__(parent)
        self.state = state
        self.loading = False
        self.last_error = ""
        self._generation = 0
        self._cancel = threading.Event()
        self._progress: list = []
        self._worker = None

        # --- source and options --------------------------------------------------------
        # combo items carry a string key (Qt compares those in findData); _sources maps it
        self.source = QComboBox()
        self._sources: dict[str, tuple[str, str | None]] = {}
        self._fill_sources()

        self.path = QLineEdit()
        self.path.setPlaceholderText("file or folder")
        self.browse = QPushButton("Browse…")
        self.key = QComboBox()
        self.key.setToolTip("Array of the .npz file / dataset inside the HDF5 file")
        self.n = QSpinBox()
        self.n.setRange(10, 1_000_000)
        self.n.setValue(4000)
        self.n.setSingleStep(1000)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.resolution = QComboBox()
        self.resolution.addItem("original", None)
        for r in RESOLUTIONS:
            self.resolution.addItem(f"{r} x {r}", r)
        self.channels = QComboBox()
        for text, value in (("auto", None), ("1 (grey)", 1), ("3 (RGB)", 3)):
            self.channels.addItem(text, value)
        self.split = QComboBox()
        for name in SPLITS:
            self.split.addItem(name, name)
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all")
        self.normalisation = QComboBox()
        for key, tip in NORMALISATIONS.items():
            self.normalisation.addItem(key, key)
            self.normalisation.setItemData(self.normalisation.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

        form = QFormLayout()
        form.addRow("source", self.source)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(self.browse)
        self._rows: dict[str, tuple[QLabel, Any]] = {}
        for key, label, field in (("path", "path", path_row), ("key", "key / dataset", self.key),
                                  ("split", "split", self.split), ("n", "points", self.n),
                                  ("seed", "seed", self.seed), ("resolution", "resolution", self.resolution),
                                  ("channels", "channels", self.channels), ("limit", "limit", self.limit),
                                  ("normalisation", "normalisation", self.normalisation)):
            lab = QLabel(label)
            form.addRow(lab, field)
            self._rows[key] = (lab, field)

        self.load_button = QPushButton("Reload")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.cancel_button)
        self.banner = MessageBanner()

        # --- preview and statistics -----------------------------------------------------
        self.images = ImageGridView(columns=8)
        self.scatter = ScatterView(size=2.5)
        self.empty = QLabel("No data loaded.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview = QStackedWidget()
        for w in (self.empty, self.images, self.scatter):
            self.preview.addWidget(w)
        self.preview.setMinimumHeight(160)
        self.stats = QLabel()
        self.stats.setTextFormat(Qt.TextFormat.RichText)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats.setWordWrap(True)

        source_box = QGroupBox("Source and preprocessing")
        sb = QVBoxLayout(source_box)
        sb.addLayout(form)
        sb.addLayout(buttons)
        stats_box = QGroupBox("Statistics")
        QVBoxLayout(stats_box).addWidget(self.stats)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(source_box)
        layout.addWidget(self.banner)
        layout.addWidget(self.preview, 1)
        layout.addWidget(stats_box)

        # --- timers and wiring ---------------------------------------------------------
        self._reload_timer = QTimer(self, singleShot=True, interval=RELOAD_DELAY_MS)
        self._reload_timer.timeout.connect(self.load)
        self._progress_timer = QTimer(self, interval=100)
        self._progress_timer.timeout.connect(self._show_progress)

        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.browse.clicked.connect(self.open_data_dialog)
        self.path.editingFinished.connect(self._on_path_edited)
        self.key.activated.connect(self._schedule_reload)
        for spin in (self.n, self.seed, self.limit):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._schedule_reload)
        for combo in (self.resolution, self.channels, self.normalisation, self.split):
            combo.activated.connect(self._schedule_reload)
        self.load_button.clicked.connect(self.load)
        self.cancel_button.clicked.connect(self.cancel)
        state.dataset_changed.connect(self._on_dataset_changed)
        state.plugins_changed.connect(self._fill_sources)

        self._set_busy(False)
        self._on_source_changed()
        if state.dataset is not None:
            self._on_dataset_changed(state.dataset)

    # --- options ---------------------------------------------------------------------
    @staticmethod
    def _source_key(source: str, name: str | None) -> str:
        return f"{source}:{name}" if source == "toy" else source

    def _fill_sources(self, *_: Any) -> None:
        """Toy sets, file sources, then whatever plugins registered; keeps the choice."""
        current = self.source.currentData()
        with QSignalBlocker(self.source):
            self.source.clear()
            self._sources.clear()
            for name in toy_names():
                self._add_source(f"2-D toy: {name}", "toy", name)
            for name in core_data.FILE_SOURCES:
                if name in DATASETS:
                    self._add_source(FILE_LABELS.get(name, name), name, None)
            for name in DATASETS.names():  # plugins' datasets
                if name not in core_data.FILE_SOURCES and name not in toy_names():
                    self._add_source(name, name, None)
            index = self.source.findData(current) if current is not None else -1
            self.source.setCurrentIndex(max(index, 0))
        if current is not None and index < 0:  # its plugin went away: show the first source
            self._on_source_changed()

    def _add_source(self, label: str, source: str, name: str | None) -> None:
        key = self._source_key(source, name)
        self._sources[key] = (source, name)
        self.source.addItem(label, key)
        self.source.setItemData(self.source.count() - 1, DATASETS.entry(name or source).description,
                                Qt.ItemDataRole.ToolTipRole)

    def select_source(self, source: str, name: str | None = None) -> None:
        """Pick a source (``toy`` with a set ``name``); raises StudioError if absent."""
        index = self.source.findData(self._source_key(source, name))
        if index < 0:
            raise StudioError(f"data source {source!r} {name or ''} is not available here")
        self.source.setCurrentIndex(index)

    @property
    def current_source(self) -> tuple[str, str | None]:
        return self._sources[self.source.currentData()]

    @property
    def source_name(self) -> str:
        return self.current_source[0]

    def _on_source_changed(self, *_: Any) -> None:
        source = self.source_name
        entry = DATASETS.entry(self.current_source[1] or source)
        needs_path = bool(entry.meta.get("needs_path"))
        images_or_file = source in core_data.FILE_SOURCES
        visible = {
            "path": needs_path, "key": source in ("array", "hdf5"), "split": source == "cifar",
            "n": not images_or_file, "seed": not images_or_file,
            "resolution": images_or_file, "channels": images_or_file, "limit": images_or_file,
            "normalisation": True,
        }
        for key, (label, field) in self._rows.items():
            label.setVisible(visible[key])
            for w in ([field] if isinstance(field, QWidget) else [self.path, self.browse]):
                w.setVisible(visible[key])
        if source in ("folder", "imagefolder") and self.resolution.currentData() is None:
            self.resolution.setCurrentIndex(self.resolution.findData(32))  # folders need one size
        self.key.clear()
        self.banner.clear()
        if needs_path and not self.path.text().strip():
            self.banner.show_info("Choose a file or folder with Browse… (or type its path).")
            return
        if needs_path:
            self._fill_keys()
        self._schedule_reload()

    def _on_path_edited(self) -> None:
        self._fill_keys()
        self._schedule_reload()

    def _fill_keys(self) -> None:
        """List the arrays of an .npz / datasets of an HDF5 file for the picker."""
        self.key.clear()
        path = Path(self.path.text().strip())
        source = self.source_name
        if source not in ("array", "hdf5") or not path.is_file():
            return
        try:
            if source == "hdf5":
                found = list_hdf5_datasets(path)
                for name, shape, dtype in found:
                    self.key.addItem(f"{name}  {shape} {dtype}", name)
                # preselect the first dataset that can be data (N x ...), not a 1-D label array
                first = next((i for i, (_, shape, _) in enumerate(found) if len(shape) >= 2), 0)
                self.key.setCurrentIndex(first)
            elif path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as npz:
                    for name in npz.files:
                        self.key.addItem(name, name)
        except (StudioError, OSError, ValueError) as e:
            self.banner.show_error(f"cannot list {path}: {e}")
        self.key.setEnabled(self.key.count() > 0)

    def options(self) -> tuple[str, dict[str, Any]]:
        """The ``[data]`` section the widgets describe: (source, options for load_dataset)."""
        source, name = self.current_source
        opts: dict[str, Any] = {}
        if name is not None:
            opts["name"] = name
        if source in core_data.FILE_SOURCES:
            if source != "digits":
                opts["path"] = self.path.text().strip()
            if source in ("array", "hdf5") and self.key.currentData():
                opts["key"] = self.key.currentData()
            if source == "cifar":
                opts["split"] = self.split.currentData()
            if self.resolution.currentData() is not None:
                opts["resolution"] = self.resolution.currentData()
            if self.channels.currentData() is not None:
                opts["channels"] = self.channels.currentData()
            if self.limit.value() > 0:
                opts["limit"] = self.limit.value()
        else:
            opts["n"] = self.n.value()
            opts["seed"] = self.seed.value()
        return source, opts

    def set_options(self, source: str, options: dict[str, Any]) -> None:
        """Show ``options`` in the widgets (recent data, tests) without loading."""
        index = self.source.findData(self._source_key(source, options.get("name")))
        if index < 0:
            raise StudioError(f"data source {source!r} {options.get('name') or ''} is not available here")
        widgets = (self.source, self.path, self.key, self.n, self.seed, self.resolution, self.channels, self.limit, self.split)
        for w in widgets:
            w.blockSignals(True)
        self.source.setCurrentIndex(index)
        self.path.setText(str(options.get("path", "")))
        for key, spin in (("n", self.n), ("seed", self.seed), ("limit", self.limit)):
            if key in options:
                spin.setValue(int(options[key]))
        for key, combo in (("resolution", self.resolution), ("channels", self.channels)):
            combo.setCurrentIndex(max(0, combo.findData(options.get(key))))
        self.split.setCurrentIndex(max(0, self.split.findData(options.get("split", "train"))))
        self.normalisation.setCurrentIndex(max(0, self.normalisation.findData(options.get("normalisation", "default"))))
        for w in widgets:
            w.blockSignals(False)
        self._on_source_changed()
        self._reload_timer.stop()
        if "key" in options:
            self.key.setCurrentIndex(max(0, self.key.findData(options["key"])))

    def open_recent(self, item: str) -> None:
        try:
            options = json.loads(item)
            source = options.pop("source")
            self.set_options(source, options)
        except (ValueError, KeyError, StudioError) as e:
            self.banner.show_error(f"cannot open recent data {item!r}: {e}")
            return
        self.load()

    def open_data_dialog(self) -> None:
        """Browse for a file or folder fitting the source (File > Open data too)."""
        source = self.source_name
        if source in FOLDER_SOURCES:
            path = QFileDialog.getExistingDirectory(self, FILE_LABELS[source])
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open data", "", "Data (*.npy *.npz *.h5 *.hdf5 *.hdf *-ubyte *-ubyte.gz *.bin);;All files (*)")
            wanted = source_for_file(Path(path)) if path else source
            if wanted != source:
                self.source.blockSignals(True)
                self.source.setCurrentIndex(self.source.findData(wanted))
                self.source.blockSignals(False)
        if path:
            self.path.setText(path)
            self._on_source_changed()

    # --- loading ---------------------------------------------------------------------
    def _schedule_reload(self, *_: Any) -> None:
        self._reload_timer.start()

    def load(self) -> None:
        """Load what the widgets describe on a worker thread (a running load is cancelled)."""
        self._reload_timer.stop()
        source, options = self.options()
        if source in core_data.FILE_SOURCES and source != "digits" and not options.get("path"):
            self.banner.show_info("Choose a file or folder with Browse… (or type its path).")
            return
        self._cancel.set()  # the previous load, if any, stops at its next piece
        self._cancel = threading.Event()
        self._generation += 1
        self._progress = []
        self._pending = (source, options, self.normalisation.currentData())
        worker = create_worker(_load, self._generation, source, options, self._cancel, self._progress,
                               _start_thread=False)
        # superqt's signal object lives in the GUI thread; connect bound slots only (PITFALLS)
        worker.returned.connect(self._on_loaded)
        self._worker = worker
        self._set_busy(True)
        worker.start()

    def cancel(self) -> None:
        self._cancel.set()

    def _on_loaded(self, result: tuple) -> None:
        generation, dataset, error = result
        if generation != self._generation:
            return  # a newer load was started meanwhile
        self._set_busy(False)
        source, options, mode = self._pending
        if error == "cancelled":
            self.banner.show_info("Loading cancelled; the previous data stays.")
            return
        if error is not None:
            self.last_error = error
            self.banner.show_error(error)
            return
        if dataset.kind == "points" and dataset.data.dim() != 2:
            self.banner.show_error(f"{options.get('path', source)}: points must be N x D, got {tuple(dataset.data.shape)}")
            return
        dataset = normalise(dataset, mode)
        self.last_error = ""
        skipped = dataset.meta.get("skipped") or []
        if skipped:
            names = "; ".join(f"{f} ({reason})" for f, reason in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self.banner.show_warning(f"skipped {len(skipped)} file(s) that could not be read: {names}{more}")
        else:
            self.banner.clear()
        # the choice is a [data] key, so what trains is what this panel previews
        section = {"source": source, **options, **({"normalisation": mode} if mode != "default" else {})}
        self.state.set_dataset(dataset, section)

    def _set_busy(self, busy: bool) -> None:
        self.loading = busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.load_button.setVisible(not busy)
        if busy:
            self.progress.setRange(0, 0)  # busy until the first report
            self._progress_timer.start()
        else:
            self._progress_timer.stop()

    def _show_progress(self) -> None:
        if len(self._progress) == 2 and self._progress[1] > 0:
            done, total = self._progress
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{done} / {total}")

    def shutdown(self) -> None:
        """Stop a running load (the main window calls this when closing)."""
        self._cancel.set()

    # --- preview and statistics -------------------------------------------------------
    def _on_dataset_changed(self, dataset: Dataset | None) -> None:
        if dataset is None:
            self.preview.setCurrentWidget(self.empty)
            self.stats.setText("")
            return
        by_class = preview_by_class(dataset)
        if by_class is not None:
            self.preview.setCurrentWidget(self.images)
            self.images.set_images(*by_class)
        elif dataset.kind == "images":
            self.preview.setCurrentWidget(self.images)
            self.images.set_images(dataset.to_uint8(dataset.data[:PREVIEW_IMAGES]))
        else:
            self.preview.setCurrentWidget(self.scatter)
            self.scatter.set_points(dataset.data[:PREVIEW_POINTS].numpy())
        self.stats.setText(stats_html(dataset))

    def export_plots(self, folder: str | Path) -> list[Path]:
        """File > Export plots: the preview as a PNG."""
        path = Path(folder) / "data_preview.png"
        self.preview.currentWidget().grab().save(str(path))
        return [path]


def source_for_file(path: Path) -> str:
    """The file source a picked file most likely is, by its name."""
    name = path.name.lower()
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return "hdf5"
    if "-ubyte" in name or ".idx" in name:
        return "idx"
    if path.suffix.lower() == ".bin":
        return "cifar"
    return "array"


def preview_by_class(dataset: Dataset) -> tuple[np.ndarray, int, list[str]] | None:
    """Labelled images as a column per class (the first PREVIEW_CLASSES classes, up to
    PREVIEW_PER_CLASS images each, blank below a short column), titled with the class
    names where the source has them: (uint8 images in row order, columns, titles).
    None for points and unlabelled images."""
    labels = dataset.meta.get("labels")
    if dataset.kind != "images" or labels is None or len(labels) != len(dataset):
        return None
    labels = np.asarray(labels)
    present = np.unique(labels)[:PREVIEW_CLASSES]
    picks = [np.flatnonzero(labels == c)[:PREVIEW_PER_CLASS] for c in present]
    sample_shape = dataset.to_uint8(dataset.data[:1]).shape[1:]
    grid = np.full((max(len(p) for p in picks), len(present), *sample_shape), 255, np.uint8)
    for column, rows in enumerate(picks):
        grid[: len(rows), column] = dataset.to_uint8(dataset.data[torch.as_tensor(rows)])
    names = dataset.meta.get("classes") or []
    titles = [str(names[c]) if 0 <= c < len(names) else str(c) for c in present.tolist()]
    titles = [t if len(t) <= 8 else t[:7] + "…" for t in titles]  # the titles do not scale with the images
    return grid.reshape(-1, *sample_shape), len(present), titles


def stats_html(dataset: Dataset) -> str:
    s = dataset.stats()
    rows = [
        ("name", dataset.name),
        ("kind", s["kind"]),
        ("count", f"{s['count']:,}"),
        ("shape", " x ".join(str(v) for v in s["shape"])),
        ("channels" if s["kind"] == "images" else "dimensions", s["channels"]),
        ("range (raw)", f"{s['min']:.4g} .. {s['max']:.4g}"),
        ("range (model)", f"{float(dataset.data.min()):.3g} .. {float(dataset.data.max()):.3g}"),
    ]
    names = ("R", "G", "B") if s["kind"] == "images" and s["channels"] == 3 else None
    per = [(names[i] if names else str(i), m, sd) for i, (m, sd) in enumerate(zip(s["mean"], s["std"]))][:8]
    rows.append(("mean / std", ", ".join(f"{c}: {m:.3g} / {sd:.3g}" for c, m, sd in per)))
    labels = dataset.meta.get("labels")
    if labels is not None and len(labels):
        classes = dataset.meta.get("classes")
        shown = ", ".join(classes[:10]) + (" …" if len(classes) > 10 else "") if classes else ""
        rows.append(("labels", f"{len(np.unique(np.asarray(labels)))} classes, {len(labels):,} labels" + (f" ({shown})" if shown else "")))
    if dataset.meta.get("path"):
        where = dataset.meta["path"] + (f" [{dataset.meta['key']}]" if dataset.meta.get("key") else "")
        rows.append(("file", where))
    return "<table cellspacing=2>" + "".join(f"<tr><td><i>{k}</i>&nbsp;</td><td>{v}</td></tr>" for k, v in rows) + "</table>"
