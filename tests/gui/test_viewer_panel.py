"""The reverse-process viewer on real runs: sampling through the Run button, scrubbing
(slider, keys, play) with the shown arrays checked against the trajectory file, step
mode and branches, every export read back, the 2-D score field, and bad runs."""

from __future__ import annotations

import json
import shutil
import tomllib

import h5py
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from studio.engine.config import parse_config
from studio.engine.events import Failed, Finished
from studio.engine.export import REFERENCE_COLOR, SAMPLE_COLOR, as_uint8_nhwc, make_grid
from studio.engine.jobs import train_job
from studio.engine.trajectory import TrajectoryReader
from studio.gui.panels.viewer.field import FIELD_GRID
from studio.gui.panels.viewer.step_views import display_images
from studio.gui.panels.viewer import ViewerPanel
from studio.gui.state import AppState
from studio.gui.widgets import mosaic

CONFIGS = "resources/configs"


def _train(config: str, out, steps: int):
    last = None
    for event in train_job(f"{CONFIGS}/{config}", out, steps=steps):
        last = event
    assert isinstance(last, Finished), last
    return out


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """A tiny trained DDPM on 8 gaussians (about 5 s)."""
    return _train("quick_toy.toml", tmp_path_factory.mktemp("runs") / "toy", 300)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A tiny trained DDPM UNet on 8x8 digits (about 10 s)."""
    return _train("quick_digits.toml", tmp_path_factory.mktemp("runs") / "digits", 40)


@pytest.fixture
def panel(qtbot):
    p = ViewerPanel(AppState())
    qtbot.addWidget(p)
    p.resize(1300, 850)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def sample(qtbot, panel, run, steps=20, n=16, sampler=None, timeout=60_000):
    panel.state.set_run_dir(run)
    if sampler:
        panel.form.fields.sampler.setCurrentText(sampler)
    panel.form.fields.steps.setValue(steps)
    panel.form.n.setValue(n)
    with qtbot.waitSignal(panel.bridge.ended, timeout=timeout) as ended:
        qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    assert isinstance(ended.args[0], Finished), ended.args[0]
    qtbot.waitUntil(lambda: panel.idle, timeout=timeout)  # the last steps are read a tick at a time
    return TrajectoryReader(panel.data.path)


def shown(view) -> np.ndarray:
    return np.asarray(view.image.image)


def expected(step: dict, name: str) -> np.ndarray:
    """What an ImageGridView must show for a step read through the engine's reader."""
    grid = mosaic(display_images(step, name))
    return grid[..., 0] if grid.shape[-1] == 1 else grid


def assert_shows(panel, reader, k):
    assert panel.timeline.step == k
    step = reader.step(k)  # float32 from the stored float16
    for name in ("x_t", "x0_hat", "eps_hat"):
        np.testing.assert_array_equal(shown(panel.image_views.views[name]), expected(step, name), err_msg=f"{name} at {k}")
    # the conversion really is the file's values: x_t pixels round-trip within a level
    np.testing.assert_allclose(display_images(step, "x_t")[..., 0] / 255.0, np.clip(step["x_t"][:, 0], 0, 1), atol=0.5 / 255 + 1e-6)


def test_sample_then_scrub_with_slider_and_keys_shows_the_files_steps(qtbot, panel, digits_run):
    reader = sample(qtbot, panel, digits_run, steps=20, n=16)
    assert len(reader) == 20 and panel.data.count == 20
    assert panel.stack.currentWidget() is panel.image_views
    assert reader.attrs["sampler"] == "ancestral" and reader.attrs["seed"] == 0
    for k in (0, 7, 13):
        panel.timeline.slider.setValue(k)
        assert_shows(panel, reader, k)
    slider = panel.timeline.slider
    slider.setFocus()
    for key, k in ((Qt.Key.Key_Right, 14), (Qt.Key.Key_Left, 13), (Qt.Key.Key_Home, 0), (Qt.Key.Key_PageUp, 10), (Qt.Key.Key_End, 19)):
        qtbot.keyClick(slider, key)
        assert_shows(panel, reader, k)
    # the panel forwards keys to the timeline when focus is elsewhere in it
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert_shows(panel, reader, 18)
    # the log-SNR plot is the file's, marked at the current step
    x, y = panel.timeline.curves["log_snr"].getData()
    np.testing.assert_allclose(y, np.clip(reader.per_step()["log_snr"], -30, 30))
    assert all(m.value() == 18 for m in panel.timeline.markers)
    # statistics: norm of x_t per step from the file
    xt = np.stack([reader.step(i)["x_t"] for i in range(20)]).reshape(20, 16, -1)
    np.testing.assert_allclose(panel.data.stats["norm_x"], np.sqrt((xt**2).mean(-1)).mean(-1), rtol=1e-4)
    assert np.isnan(panel.data.stats["delta"][0]) and np.all(np.asarray(panel.data.stats["delta"][1:]) > 0)


def test_score_norm_axis_labels_decades_only_over_a_decade(qtbot, panel):
    """The ||score|| plot's log axis: a range over a decade labels the decades only
    (pyqtgraph labels every minor tick of a one-decade range, overlapping in the small
    plot: seen in a grab); a range within a decade keeps pyqtgraph's own labels."""
    timeline, axis = panel.timeline, panel.timeline.score_axis

    def labelled(values):
        stats = {key: list(values) for key in ("norm_x", "norm_score", "delta")}
        timeline.set_curves(np.zeros(len(values)), stats)
        lo, hi = np.log10(min(values)), np.log10(max(values))
        levels = axis.tickValues(lo, hi, 120)[: axis.style["maxTextLevel"] + 1]
        return sorted(round(10 ** v, 6) for _, ticks in levels for v in ticks if lo <= v <= hi)

    assert labelled([0.9, 3.0, 12.0]) == [1.0, 10.0]
    within = labelled([2.0, 5.0, 8.0])
    assert len(within) >= 2 and 3.0 in within  # not left without a label


def test_dragging_a_marker_and_play_space(qtbot, panel, digits_run):
    reader = sample(qtbot, panel, digits_run, steps=30, n=4)
    panel.timeline.markers[1].setValue(12.3)  # what a mouse drag does
    assert_shows(panel, reader, 12)
    panel.timeline.speed.setCurrentIndex(0)  # 5 steps/s: it cannot reach the end at once
    panel.timeline.slider.setFocus()
    qtbot.keyClick(panel.timeline.slider, Qt.Key.Key_Space)
    assert panel.timeline.playing and panel.timeline.play_button.isChecked()
    qtbot.waitUntil(lambda: panel.timeline.step > 12, timeout=5000)
    qtbot.keyClick(panel.timeline.slider, Qt.Key.Key_Space)
    assert not panel.timeline.playing
    k = panel.timeline.step
    assert_shows(panel, reader, k)
    qtbot.wait(300)
    assert panel.timeline.step == k  # paused stays put


def test_scrub_before_sampling_ends_then_cancel(qtbot, panel, digits_run):
    panel.state.set_run_dir(digits_run)
    panel.form.fields.steps.setValue(2000)
    panel.form.n.setValue(16)
    qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.data is not None and panel.data.count >= 3, timeout=30_000)
    panel.bridge.pause()  # holds the job mid-run, so the check below is not a race
    assert panel.bridge.running and not panel.data.complete
    reader = TrajectoryReader(panel.data.path)
    panel.timeline.set_step(1)
    assert_shows(panel, reader, 1)
    # the export that needs the final samples says why it cannot run yet
    errors = []
    panel.export.failed.connect(errors.append)
    assert panel.export.export_to("samples_npz", panel.data.path.with_name("early.npz")) is None
    assert "still writing" in errors[-1]
    with qtbot.waitSignal(panel.bridge.ended, timeout=30_000) as ended:
        qtbot.mouseClick(panel.form.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args[0].result.get("cancelled") is True
    qtbot.waitUntil(lambda: panel.idle, timeout=30_000)
    assert "cancelled" in panel.banner.text()
    assert 3 <= panel.data.count < 2000 and panel.form.run_button.isEnabled()
    panel.timeline.set_step(panel.data.count - 1)
    assert_shows(panel, reader, panel.data.count - 1)
    assert panel.export.export_to("samples_npz", panel.data.path.with_name("early.npz")) is None
    assert "not finished" in errors[-1]


def test_step_mode_and_branch_compare(qtbot, panel, toy_run):
    reader = sample(qtbot, panel, toy_run, steps=30, n=64)
    panel.timeline.set_step(10)
    bf = panel.branch_form
    assert bf.fields.steps.text() == "same grid"
    qtbot.mouseClick(bf.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.branch is not None and panel.branch.count == 2 and panel.branch_bridge.paused, timeout=20_000)
    qtbot.wait(200)
    panel.poll()
    assert panel.branch.count == 2  # held after one step
    qtbot.mouseClick(bf.step_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (panel.poll(), panel.branch.count)[1] == 3, timeout=20_000)
    branch = TrajectoryReader(panel.branch.path)
    # the branch starts from the scrubbed state, on the same grid (20 steps left of 30)
    assert branch.steps == 20
    np.testing.assert_array_equal(branch.step(0)["x_t"], reader.step(10)["x_t"])
    np.testing.assert_allclose(branch.per_step()["t"][:3], reader.per_step()["t"][10:13])
    left, right = panel.compare_states
    np.testing.assert_array_equal(left, reader.step(12)["x_t"])
    np.testing.assert_array_equal(right, branch.step(2)["x_t"])
    # Branch runs the rest at once
    with qtbot.waitSignal(panel.branch_bridge.ended, timeout=30_000):
        qtbot.mouseClick(bf.branch_button, Qt.MouseButton.LeftButton)
    assert panel.branch.complete and len(branch) == 20
    left, right = panel.compare_states
    np.testing.assert_array_equal(left, reader.samples())
    np.testing.assert_array_equal(right, branch.samples())
    assert not np.allclose(left, right)  # another seed: another result
    assert "done" in bf.status.text()
    # another sampler, steps and seed from another step
    panel.timeline.set_step(5)
    bf.fields.sampler.setCurrentText("ddim")
    assert bf.fields.option("eta") is not None  # editors from DDIM's declared options
    bf.fields.option("eta").setText("0.5")
    bf.fields.steps.setValue(7)
    bf.fields.seed.setValue(3)
    with qtbot.waitSignal(panel.branch_bridge.ended, timeout=30_000):
        qtbot.mouseClick(bf.branch_button, Qt.MouseButton.LeftButton)
    other = TrajectoryReader(panel.branch.path)
    attrs = other.attrs
    assert (attrs["sampler"], attrs["steps"], attrs["seed"]) == ("ddim", 7, 3)
    assert json.loads(attrs["options"]) == {"eta": 0.5}
    assert other.per_step()["t"][0] == pytest.approx(reader.per_step()["t"][5])
    assert np.isfinite(other.samples()).all()


@pytest.mark.parametrize("sampler_name", ["dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde"])
def test_multistep_branch_continues_at_its_order(qtbot, panel, toy_run, sampler_name):
    """A DPM-Solver++(2M) (ODE or SDE) branch from record k gets record k-1's x0_hat and
    t, a (3M) branch records k-1's and k-2's: it ends where the engine's branch with that
    history and the branch's seed ends (same stored float16 states), not where a restart
    with less history does."""
    from studio.core.registry import SAMPLERS
    from studio.engine.jobs import sample_job

    reader = sample(qtbot, panel, toy_run, steps=8, n=64, sampler=sampler_name)
    k = 4
    panel.timeline.set_step(k)
    bf = panel.branch_form
    bf.fields.sampler.setCurrentText(sampler_name)
    with qtbot.waitSignal(panel.branch_bridge.ended, timeout=30_000):
        qtbot.mouseClick(bf.branch_button, Qt.MouseButton.LeftButton)
    got = TrajectoryReader(panel.branch.path).samples()
    here, times = reader.step(k), reader.per_step()["t"]
    common = dict(sampler=sampler_name, steps=TrajectoryReader(panel.branch.path).steps, seed=bf.fields.seed.value(),
                  x_init=here["x_t"].astype(np.float32), t_start=float(times[k]), records=False)

    def ends(depth):
        back = range(k - 1, k - 1 - depth, -1)
        history = {"x0_prev": [reader.step(j)["x0_hat"].astype(np.float32) for j in back],
                   "t_prev": [float(times[j]) for j in back]} if depth else {}
        return list(sample_job(toy_run, **common, **history))[-1].result["samples"]

    depth = SAMPLERS.get(sampler_name).history
    full, less = ends(depth), ends(depth - 1)
    np.testing.assert_allclose(got, full, atol=1e-6)
    assert np.abs(got - less).max() > 10 * np.abs(got - full).max() + 1e-6


def test_points_show_scatter_paths_and_score_field(qtbot, panel, toy_run):
    reader = sample(qtbot, panel, toy_run, steps=40, n=200)
    assert panel.stack.currentWidget() is panel.point_view
    view = panel.point_view
    for k in (0, 20, 39):
        panel.timeline.set_step(k)
        step = reader.step(k)
        xs, ys = view.points.getData()
        np.testing.assert_array_equal(np.stack([xs, ys], 1), step["x_t"].astype(np.float64))
        heads = view.path_heads.getData()
        np.testing.assert_allclose(np.stack(heads, 1), step["x_t"][:len(heads[0])], rtol=1e-6)
        qtbot.waitUntil(lambda: not view.field_pending, timeout=10_000)  # evaluated on the worker
        field = view.field_vectors
        assert field.shape == (FIELD_GRID**2, 2) and np.isfinite(field).all()
    # at a high noise level the learned score points back towards the data (inwards)
    panel.timeline.set_step(0)
    assert not view.field_pending  # kept per step: drawn at once
    x0, x1, y0, y1 = panel.point_view.bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, FIELD_GRID), np.linspace(y0, y1, FIELD_GRID))
    outward = np.stack([gx.ravel(), gy.ravel()], 1)
    inward = -(panel.point_view.field_vectors * outward).sum(1)
    assert (inward > 0).mean() > 0.9
    segs_x, _ = panel.point_view.field.getData()
    assert len(segs_x) == 2 * FIELD_GRID**2


def _png_text(path):
    with Image.open(path) as im:
        return im.size, dict(im.text)


def test_every_export_reads_back(qtbot, panel, digits_run, tmp_path):
    reader = sample(qtbot, panel, digits_run, steps=20, n=12)
    ex = panel.export
    samples = reader.samples()
    ex.rows.setValue(3)
    ex.padding.setValue(1)
    ex.scale.setValue(2)
    out = ex.export_to("grid_png", tmp_path / "grid.png")
    size, text = _png_text(out)
    grid = make_grid(samples, rows=3, padding=1)  # 3 rows of 4 digits
    assert size == (grid.shape[1] * 2, grid.shape[0] * 2) == ((4 * 9 + 1) * 2, (3 * 9 + 1) * 2)
    with Image.open(out) as im:
        np.testing.assert_array_equal(np.asarray(im)[::2, ::2], grid[..., 0])
    assert (text["sampler"], text["seed"], text["steps"], text["n"]) == ("ancestral", "0", "20", "12")
    cfg = parse_config(tomllib.loads(text["config"]))  # the config comes back whole
    assert cfg.method["name"] == "ddpm" and cfg.network["kind"] == "unet"

    ex.strip_steps.setText("0, 5, end")
    ex.strip_samples.setValue(3)
    ex.scale.setValue(1)
    out = ex.export_to("strip_png", tmp_path / "strip.png")
    size, text = _png_text(out)
    assert size == (4 * 9 + 1, 3 * 9 + 1)  # 3 steps + the final samples, 3 samples
    assert text["strip_steps"] == "0, 5, 19" and "config" in text
    with Image.open(out) as im:
        strip = np.asarray(im)
    np.testing.assert_array_equal(strip[1:9, 1:9], as_uint8_nhwc(reader.step(0)["x_t"][:1])[0, ..., 0])

    ex.gif_frames.setValue(5)
    out = ex.export_to("gif", tmp_path / "reverse.gif")
    with Image.open(out) as im:
        assert im.n_frames == 6  # 5 steps + the final samples
        assert im.size == make_grid(samples, rows=3, padding=1).shape[1::-1]

    out = ex.export_to("trajectory_h5", tmp_path / "traj.h5")
    with h5py.File(out, "r") as f:
        assert f["x_t"].shape == f["x0_hat"].shape == (20, 12, 1, 8, 8)
        assert f["t"].shape == (20,)
        np.testing.assert_array_equal(f["samples"][...], samples)
        assert json.loads(f.attrs["config"])["method"]["name"] == "ddpm"

    out = ex.export_to("samples_npz", tmp_path / "samples.npz")
    with np.load(out) as z:
        assert z["samples"].shape == (12, 1, 8, 8) and int(z["seed"]) == 0 and int(z["steps"]) == 20
        np.testing.assert_array_equal(z["samples"], samples)
    assert "Wrote" in panel.banner.text()
    # a bad strip step is named, nothing is written
    ex.strip_steps.setText("0, 99")
    assert ex.export_to("strip_png", tmp_path / "bad.png") is None
    assert "99" in panel.banner.text() and not (tmp_path / "bad.png").exists()


def test_points_exports(qtbot, panel, toy_run, tmp_path):
    panel.state.set_run_dir(toy_run)
    assert panel.form.n.value() >= 1000  # points: enough samples to show the distribution
    reader = sample(qtbot, panel, toy_run, steps=10, n=100)
    ex = panel.export
    ex.scale.setValue(1)
    # the "grid" of points is a plot with axes: the samples over the held-out data in grey
    out = ex.export_to("grid_png", tmp_path / "scatter.png")
    size, text = _png_text(out)
    assert size == (1200, 1200) and text["seed"] == "0"
    pixels = np.asarray(Image.open(out).convert("RGB"))
    for colour in (SAMPLE_COLOR, REFERENCE_COLOR):
        assert (pixels == np.array(colour, np.uint8)).all(-1).sum() > 500
    size, _ = _png_text(ex.export_to("strip_png", tmp_path / "strip.png"))
    assert size[1] == 384 + 4 and size[0] > 3 * 384  # 8 steps + final, side by side
    ex.gif_frames.setValue(4)
    with Image.open(ex.export_to("gif", tmp_path / "points.gif")) as im:
        assert im.n_frames == 5 and im.size == (384, 384)
    with np.load(ex.export_to("samples_npz", tmp_path / "points.npz")) as z:
        np.testing.assert_array_equal(z["samples"], reader.samples())


def test_bad_runs_give_clear_messages_and_the_panel_stays_usable(qtbot, panel, toy_run, tmp_path):
    panel.state.set_run_dir(tmp_path / "nowhere")
    assert panel.banner.level == "error" and "nowhere" in panel.banner.text()
    qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    assert "Open a run" in panel.banner.text() and not panel.bridge.running

    # a run without checkpoints (training just started)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.toml", "data.json"):
        shutil.copy(toy_run / name, bare / name)
    panel.state.set_run_dir(bare)
    assert panel.banner.level == "warning" and "no checkpoint" in panel.banner.text()
    qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    assert panel.banner.level == "error" and "no checkpoint" in panel.banner.text()

    # a truncated checkpoint is named
    broken = tmp_path / "broken"
    shutil.copytree(toy_run, broken, ignore=shutil.ignore_patterns("samples"))
    ckpt = sorted((broken / "checkpoints").iterdir())[-1]
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    panel.state.set_run_dir(broken)
    assert panel.banner.level == "error" and ckpt.name in panel.banner.text()
    qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    assert panel.banner.level == "error" and not panel.bridge.running

    # a bad value in the config is named too
    bad = tmp_path / "badcfg"
    shutil.copytree(toy_run, bad, ignore=shutil.ignore_patterns("samples"))
    (bad / "config.toml").write_text((bad / "config.toml").read_text().replace('name = "ddpm"', 'name = "nope"'))
    panel.state.set_run_dir(bad)
    assert panel.banner.level == "error" and "nope" in panel.banner.text()

    # and a good run still samples
    reader = sample(qtbot, panel, toy_run, steps=5, n=8)
    assert len(reader) == 5 and panel.banner.level != "error"


def test_samplers_offered_follow_the_method(qtbot, panel, toy_run):
    panel.state.set_run_dir(toy_run)
    names = [panel.form.fields.sampler.itemText(i) for i in range(panel.form.fields.sampler.count())]
    assert {"ancestral", "ddim", "langevin"} <= set(names)
    assert panel.form.fields.sampler.currentText() == "ancestral"  # the run's own
    assert panel.form.fields.option("eta") is None and panel.form.fields.option("variance") is not None
    panel.form.fields.sampler.setCurrentText("ddim")
    assert panel.form.fields.option("eta") is not None and panel.form.fields.option("variance") is None
    reader = sample(qtbot, panel, toy_run, steps=4, n=8, sampler="langevin")
    assert reader.attrs["sampler"] == "langevin" and len(reader) == reader.steps  # levels x steps each + denoise


def test_failed_job_is_reported(qtbot, panel, toy_run, tmp_path):
    """A checkpoint that breaks after the run was opened is named the moment Run is
    pressed (the job factory checks its input at the call): no job, no file."""
    run = tmp_path / "late"
    shutil.copytree(toy_run, run, ignore=shutil.ignore_patterns("samples"))
    panel.state.set_run_dir(run)
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    ckpt.write_bytes(b"garbage")
    qtbot.mouseClick(panel.form.run_button, Qt.MouseButton.LeftButton)
    assert not panel.bridge.running and panel.bridge.last_event is None
    assert panel.banner.level == "error" and ckpt.name in panel.banner.text()
    assert panel.form.run_button.isEnabled() and not list((run / "samples").glob("*.h5"))


def test_open_a_trajectory_written_by_the_engine_and_scrub_it(qtbot, panel, toy_run, tmp_path):
    from studio.engine.jobs import sample_job

    path = tmp_path / "cli_traj.h5"
    for _ in sample_job(toy_run, steps=25, n=32, seed=4, trajectory=path, records=False):
        pass
    assert panel.open_trajectory(path)
    qtbot.waitUntil(lambda: panel.idle, timeout=20_000)
    reader = TrajectoryReader(path)
    assert panel.data.count == len(reader) == 25
    assert panel.run is not None and panel.run.path == toy_run  # its run opened too
    for k in (0, 12, 24):
        panel.timeline.set_step(k)
        x, y = panel.point_view.points.getData()
        np.testing.assert_allclose(np.stack([x, y], 1), reader.step(k)["x_t"], rtol=1e-6)

    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("not a trajectory")
    assert not panel.open_trajectory(not_hdf5)
    assert "notes.h5" in panel.banner.text()
    assert panel.data.path == path  # the good one is still shown


def test_scrubbing_2d_draws_fields_evaluated_off_the_gui_thread(qtbot, panel, toy_run):
    """The score field's network call runs on a worker, a batch of steps at a time; each
    step's arrows equal a lone evaluation at its own time; a scrub back draws at once."""
    import threading

    from studio.gui.panels.viewer.field import score_fields

    reader = sample(qtbot, panel, toy_run, steps=40, n=64)
    view = panel.point_view
    method = view.model[0]
    threads = []
    predict = method.predict
    method.predict = lambda *a, **k: threads.append(threading.current_thread()) or predict(*a, **k)
    view.model = view.model  # a new model: the fields evaluated so far are dropped
    ts = reader.per_step()["t"]
    for k in range(40):
        panel.timeline.set_step(k)
    qtbot.waitUntil(lambda: not view.field_busy, timeout=20_000)  # the step on screen, then the others ahead
    assert threads and threading.main_thread() not in threads
    assert len(threads) < 40  # batched: 40 steps in a few calls
    for k in (39, 0, 17):  # every step's field is kept now
        panel.timeline.set_step(k)
        assert not view.field_pending
        lone = score_fields(view.model, view.bounds, [float(ts[k])])[0]
        np.testing.assert_allclose(view.field_vectors, lone.score, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.stack(view.field.getData(), 1), lone.segments, rtol=1e-4, atol=1e-5)

    method.predict = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("net broke"))
    view.model = view.model
    panel.timeline.set_step(5)
    qtbot.waitUntil(lambda: panel.banner.level == "warning", timeout=10_000)
    assert "net broke" in panel.banner.text() and view.field_vectors is None
    method.predict = predict


def test_a_plugin_sampler_loaded_later_is_offered_and_samples(qtbot, state, settings, toy_run, tmp_path, monkeypatch):
    """Through the real main window: File > plugins folder after the run was opened."""
    import importlib.metadata

    from studio.core.registry import SAMPLERS
    from studio.gui.app import build_window
    from studio.plugins import unload_plugins

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])  # only the chosen folder
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "half.py").write_text(
        "from studio.core.registry import SAMPLERS\n"
        "from studio.core.samplers.ddim import DDIM\n"
        "class DDIMHalf(DDIM):\n"
        "    name = 'ddim_half'\n"
        "    def plan(self, method, steps, t_start, opts):\n"
        "        return super().plan(method, steps, t_start, {**opts, 'eta': 0.5})\n"
        "SAMPLERS.register('ddim_half', DDIMHalf(), description='DDIM, eta 0.5')\n")
    window = build_window(state, settings=settings)
    qtbot.addWidget(window)
    viewer = window.panel("viewer")
    state.set_run_dir(toy_run)
    names = lambda fields: [fields.sampler.itemText(i) for i in range(fields.sampler.count())]  # noqa: E731
    assert "ddim_half" not in names(viewer.form.fields)
    viewer.form.fields.steps.setValue(6)
    try:
        window.load_plugins(folder)
        assert "ddim_half" in SAMPLERS
        assert "ddim_half" in names(viewer.form.fields) and "ddim_half" in names(viewer.branch_form.fields)
        assert viewer.form.fields.sampler.currentText() == "ancestral"  # the pick stays
        viewer.form.fields.sampler.setCurrentText("ddim_half")
        viewer.form.n.setValue(16)
        with qtbot.waitSignal(viewer.bridge.ended, timeout=60_000) as ended:
            qtbot.mouseClick(viewer.form.run_button, Qt.MouseButton.LeftButton)
        assert isinstance(ended.args[0], Finished), ended.args[0]
        qtbot.waitUntil(lambda: viewer.idle, timeout=20_000)
        assert TrajectoryReader(viewer.data.path).attrs["sampler"] == "ddim_half"
    finally:
        viewer.shutdown()
        unload_plugins()


def test_control_column_fits_long_run_and_checkpoint_names(qtbot, tmp_path):
    """A long run folder and checkpoint name neither widen the column nor squeeze its
    buttons: the names are elided (full in the tooltips), the buttons keep their size."""
    from studio.gui.panels.viewer.controls import SamplingForm

    form = SamplingForm()
    qtbot.addWidget(form)
    form.resize(270, 600)
    form.show()
    qtbot.waitExposed(form)
    run = tmp_path / ("ddpm-8gaussians-20261201-231544-" + "a-long-experiment-name-" * 3)
    ckpts = [run / "checkpoints" / f"step_{k:08d}.safetensors" for k in (400, 12_000_000)]
    before = form.minimumSizeHint().width()
    form.set_run(run, ckpts, "ddpm", {})
    assert form.minimumSizeHint().width() <= max(before, 270)
    assert form.run_label.toolTip() == str(run) and form.run_label.text() == run.name
    assert [form.checkpoint.itemText(i) for i in range(3)] == ["latest (step 12000000)", "step 12000000", "step 400"]
    assert form.checkpoint.itemData(1, Qt.ItemDataRole.ToolTipRole) == ckpts[1].name
    for button in (form.browse, form.open_trajectory):
        assert button.width() >= button.sizeHint().width(), button.text()
