"""The bad-input corpus through the app's own controls, in the real MainWindow: the Data
panel (path typed, Reload clicked), Load TOML, Open run, Open trajectory and the schedule
editor's Load (file dialogs answered by patching QFileDialog, as a user answers them).
Each bad file is one message naming it; the last good view stays; the app keeps working."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from studio.engine.events import Finished
from studio.engine.sampling import sample_job
from studio.engine.trainer import train_job
from studio.gui.app import build_window, default_state

from ..engine.procs import tiny_config

pytestmark = pytest.mark.slow  # five windows and a trained run: ~30 s of CPU


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny trained run, a good trajectory of it, and the bad files."""
    root = tmp_path_factory.mktemp("app_corpus")
    run = root / "run"
    assert isinstance(list(train_job(tiny_config(root, steps=40, checkpoint_every=20), run))[-1], Finished)
    good_traj = root / "good.h5"
    assert isinstance(list(sample_job(run, steps=10, n=8, trajectory=good_traj, records=False))[-1], Finished)
    bad = root / "bad"
    bad.mkdir()
    cut = bad / "cut.h5"
    cut.write_bytes(good_traj.read_bytes()[: good_traj.stat().st_size // 2])
    (bad / "text.h5").write_text("not a trajectory")
    with h5py.File(bad / "other.h5", "w") as f:
        f["images"] = np.zeros((4, 8, 8), np.uint8)
    return root, run, good_traj


@pytest.fixture
def window(qtbot, settings, tmp_path):
    w = build_window(default_state(), settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.panel("training").ask_stop_on_close = lambda: True
    return w


def answer_open(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(path)))


def test_data_panel_bad_files(window, qtbot, tmp_path, made):
    root = made[0]
    panel, state = window.panel("data"), window.state
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "nan.npy", np.full((20, 2), np.nan, np.float32))
    np.save(tmp_path / "flat.npy", np.arange(10.0))
    np.save(tmp_path / "pickled.npy", np.array([Evil(str(tmp_path / "pwned"))], dtype=object), allow_pickle=True)
    with h5py.File(tmp_path / "strings.h5", "w") as f:
        f["names"] = np.array([[b"a", b"b"], [b"c", b"d"]], dtype=h5py.string_dtype())
        f["images"] = np.zeros((4, 8, 8), np.uint8)
    (tmp_path / "cut.h5").write_bytes((root / "bad" / "other.h5").read_bytes()[:300])
    cases = [
        ("folder", {"path": str(folder), "resolution": 8}, "cut.png"),
        ("folder", {"path": str(tmp_path / "empty"), "resolution": 8}, "empty"),
        ("array", {"path": str(tmp_path / "nan.npy")}, "nan.npy"),
        ("array", {"path": str(tmp_path / "flat.npy")}, "flat.npy"),
        ("array", {"path": str(tmp_path / "pickled.npy")}, "pickled.npy"),
        ("hdf5", {"path": str(tmp_path / "strings.h5"), "key": "names"}, "names"),
        ("hdf5", {"path": str(tmp_path / "cut.h5")}, "cut.h5"),
        ("array", {"path": str(tmp_path / "absent.npy")}, "absent.npy"),
    ]
    before, options = state.dataset, dict(state.data_options)
    for source, opts, culprit in cases:
        panel.set_options(source, opts)
        panel.path.setText(opts["path"])
        panel.load_button.click()
        qtbot.waitUntil(lambda: not panel.loading, timeout=20_000)
        assert culprit in panel.banner.text(), (culprit, panel.banner.text())
        assert state.dataset is before and state.data_options == options  # the last good data stays
    assert not (tmp_path / "pwned").exists()
    np.save(tmp_path / "good.npy", np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32))
    panel.set_options("array", {"path": str(tmp_path / "good.npy")})
    panel.load_button.click()
    qtbot.waitUntil(lambda: state.dataset is not before, timeout=20_000)
    assert len(state.dataset) == 50 and panel.banner.text() == ""


BAD_TOML = {  # a whole config with one thing wrong (replacements in the tiny config)
    "unknown_key": ({"seed = 3": "seed = 3\nstepz = 3"}, "stepz"),
    "beta_ge_1": ({"steps = 50": "steps = 50\nbeta_end = 1.5"}, "beta_end"),
    "underflow": ({"steps = 50": "steps = 1000\nbeta_end = 0.95"}, "log-SNR"),
    "lr_nan": ({"lr = 2e-3": "lr = nan"}, "lr"),
    "syntax": ({"[train]": "[train"}, "syntax.toml"),
    "rising": ({'family = "linear"\nsteps = 50': 'family = "custom"\npoints = [[0.0, 1.0], [0.5, 2.0], [1.0, -3.0]]'}, "log-SNR"),
    "not_utf8": ({'name = "8gaussians"': 'name = "caf\udce9"'}, "not_utf8.toml"),
}


def test_load_toml_bad_files(window, tmp_path, monkeypatch):
    training = window.panel("training")
    before = training.form.config().to_toml()
    for name, (replace, culprit) in BAD_TOML.items():
        text = tiny_config(tmp_path).read_text()
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new, 1)
        path = tmp_path / f"{name}.toml"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        answer_open(monkeypatch, path)
        training.load_button.click()
        assert culprit in training.banner.text(), (name, training.banner.text())
        assert training.form.config().to_toml() == before  # the form keeps the last good config
    good = tmp_path / "good.toml"
    good.write_text(tiny_config(tmp_path).read_text())
    answer_open(monkeypatch, good)
    training.load_button.click()
    assert training.form.config().train["batch_size"] == 64


def test_open_run_bad_folders(window, qtbot, tmp_path, monkeypatch, made):
    import shutil

    _, run, _ = made
    training = window.panel("training")
    answer_open(monkeypatch, run)
    training.open_button.click()
    qtbot.waitUntil(lambda: len(training.history.series["loss"]) == 40, timeout=20_000)
    garbage = tmp_path / "garbage"
    shutil.copytree(run, garbage)
    (garbage / "config.toml").write_text("[train\n")
    not_run = tmp_path / "photos"
    not_run.mkdir()
    for folder in (not_run, garbage, tmp_path / "missing"):
        answer_open(monkeypatch, folder)
        training.open_button.click()
        assert folder.name in training.banner.text(), (folder, training.banner.text())
        assert len(training.history.series["loss"]) == 40 and str(run) in training.run_label.text()  # last good view
    answer_open(monkeypatch, run)  # the app keeps working: the good run opens again
    training.open_button.click()
    assert training.banner.text() == "" or "cannot" not in training.banner.text()


def test_open_trajectory_bad_files(window, qtbot, monkeypatch, made):
    root, _, good = made
    viewer = window.panel("viewer")
    answer_open(monkeypatch, good)
    viewer.form.open_trajectory.click()
    qtbot.waitUntil(lambda: viewer.data is not None and viewer.data.count == 10, timeout=20_000)
    shown = viewer.data
    for name in ("cut.h5", "text.h5", "other.h5", "absent.h5"):
        answer_open(monkeypatch, root / "bad" / name)
        viewer.form.open_trajectory.click()
        assert name in viewer.banner.text(), (name, viewer.banner.text())
        assert viewer.data is shown  # the trajectory on screen stays
    answer_open(monkeypatch, good)
    viewer.form.open_trajectory.click()
    assert viewer.data is not shown


def test_schedule_load_bad_files(window, tmp_path, monkeypatch):
    editor = window.panel("schedule")
    files = {
        "beta_ge_1.json": json.dumps({"family": "linear", "steps": 100, "beta_start": 1e-4, "beta_end": 1.5}),
        "rising.json": json.dumps({"family": "custom", "points": [[0.0, 1.0], [0.5, 2.0], [1.0, -3.0]]}),
        "underflow.json": json.dumps({"family": "linear", "steps": 1000, "beta_end": 0.95}),
        "no_family.json": json.dumps({"steps": 10}),
        "not_json.json": "{family: linear",
        "list.json": "[1, 2]",
        "pickle.json": pickle.dumps({"family": "linear"}).decode("latin-1"),
    }
    names = [e.name for e in window.state.schedules]
    for fname, text in files.items():
        path = tmp_path / fname
        path.write_text(text, encoding="latin-1")
        answer_open(monkeypatch, path)
        editor.load_button.click()
        assert fname in editor.banner.text(), (fname, editor.banner.text())
        assert [e.name for e in window.state.schedules] == names
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"family": "cosine", "steps": 100}))
    answer_open(monkeypatch, good)
    editor.load_button.click()
    assert [e.name for e in window.state.schedules] == [*names, "good"]
