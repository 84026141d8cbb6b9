"""The runs index (engine.run_index) over run directories the real CLI made in this
test: states, summaries, evaluation figures, the config keys that differ, the curves an
overlay draws, and a run followed while another process writes it."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal

import numpy as np
import pytest

from studio.engine.run_index import (
    RunCurves,
    differing_keys,
    find_runs,
    index_runs,
    load_evaluation,
    run_label,
    tensorboard_smooth,
)
from tests.cli_runs import rows, run_cli, start, stop, wait_rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_runs):
    root = tmp_path_factory.mktemp("index") / "runs"
    made = {name: shutil.copytree(run, root / name) for name, run in tiny_runs.items()}  # base, low_lr, nan
    proc = run_cli("evaluate", made["base"], "--n", "300", "--json")
    assert proc.returncode == 0, proc.stderr
    made["figures"] = json.loads(proc.stdout)
    (root / "notes").mkdir()  # not a run: skipped
    (root / "notes" / "readme.txt").write_text("x")
    return root, made


def test_lists_every_run_with_its_state_and_summary(runs):
    root, made = runs
    assert [p.name for p in find_runs(root)] == ["base", "low_lr", "nan"]
    table = {s.name: s for s in index_runs(root)}
    assert {k: s.state for k, s in table.items()} == {"base": "finished", "low_lr": "finished", "nan": "failed"}
    base = table["base"]
    last = rows(made["base"])[-1]
    assert (base.method, base.schedule, base.network) == ("ddpm", "linear", "mlp")
    assert base.step == 40 == last["step"] and base.total_steps == 40 and base.batch_size == 64
    assert base.loss == pytest.approx(last["loss_smooth"])
    assert table["nan"].step < 40 and table["nan"].loss is not None and math.isfinite(table["nan"].loss)
    # a run opened from elsewhere joins the list once, under its folder name
    again = index_runs(root / "notes", extra=[made["base"], made["base"]])
    assert [s.name for s in again] == ["base"]


def test_evaluate_figures_are_kept_in_the_run(runs):
    root, made = runs
    figures = made["figures"]
    saved = load_evaluation(made["base"])
    assert saved["sliced_wasserstein"] == pytest.approx(figures["sliced_wasserstein"])
    assert saved["checkpoint"] == "step_00000040.safetensors"
    assert {s.name: s.evaluation for s in index_runs(root)}["base"]["bits_per_dim"] == pytest.approx(figures["bits_per_dim"])
    assert load_evaluation(made["low_lr"]) == {}


def test_differing_keys_name_only_what_differs(runs):
    root, _ = runs
    table = {s.name: s for s in index_runs(root)}
    base, low = table["base"].config, table["low_lr"].config
    assert differing_keys([base, low]) == {"train.lr": [2e-3, 1e-3]}
    assert run_label(low, ["train.lr"], "low_lr") == "lr=0.001"
    # another schedule family: its own keys, absent (None) from the other run's config
    cos = {k: v for k, v in base.items() if not k.startswith("schedule.")}
    cos.update({"schedule.family": "cosine", "schedule.steps": 50, "schedule.s": 0.008, "schedule.max_beta": 0.999})
    diff = differing_keys([base, cos])
    assert list(diff)[0] == "schedule.family" and diff["schedule.family"] == ["linear", "cosine"]
    # linear's betas against cosine's s and max_beta: present in one, absent (None) in the other
    assert diff["schedule.beta_start"][1] is None and diff["schedule.s"][0] is None
    assert "train.lr" not in diff and "network.kind" not in diff
    assert run_label(cos, list(diff), "cosine") == "family=cosine"  # its betas follow from the family
    assert run_label(base, ["train.lr", "train.seed", "data.n"], "x") == "lr=0.002, seed=3, ..."
    assert differing_keys([base]) == {} and differing_keys([base, dict(base)]) == {}


def test_curves_for_overlays(runs):
    _, made = runs
    reader = RunCurves(made["base"])
    assert reader.update() and not reader.update()  # nothing new the second time
    c = reader.data()
    rws = rows(made["base"])
    np.testing.assert_array_equal(c.step, np.arange(1, 41))
    np.testing.assert_allclose(c.loss, [r["loss"] for r in rws])
    np.testing.assert_allclose(c.grad_norm, [r["grad_norm"] for r in rws])
    np.testing.assert_allclose(c.lr[:5], 2e-3 * np.arange(1, 6) / 5)  # the linear warm-up
    np.testing.assert_array_equal(c.x("samples"), c.step * 64)
    t = c.x("time")
    assert np.all(np.diff(t) >= 0) and t[-1] == pytest.approx(rws[-1]["time"])
    x, rate = c.throughput()
    assert list(x) == [5, 10, 15, 20, 25, 30, 35, 40] and np.all(rate > 0)
    np.testing.assert_allclose(rate, [r["steps_per_s"] * 64 for r in rws if "steps_per_s" in r])
    assert c.level_step == 40 and len(c.level_log_snr) == len(c.level_loss) > 64  # pairs of several intervals
    centres, means = c.levels(np.linspace(-12, 12, 25))
    assert len(centres) > 3 and np.all(means > 0)
    with pytest.raises(ValueError, match="x axis"):
        c.x("epochs")


def test_tensorboard_smoothing():
    v = np.array([1.0, 0.0, 3.0, math.nan, 5.0])
    np.testing.assert_allclose(tensorboard_smooth(v, 0.0)[[0, 1, 2, 4]], v[[0, 1, 2, 4]])
    s = tensorboard_smooth(v, 0.5)
    # debiased EMA: 1; (0.25 + 0) / 0.75; (0.125 + 1.5) / 0.875; nan carried; then 5 folded in
    assert s[0] == pytest.approx(1.0) and s[1] == pytest.approx(1 / 3) and s[2] == pytest.approx(1.625 / 0.875)
    assert math.isnan(s[3]) and s[4] == pytest.approx((1.625 * 0.5 + 2.5) / (1 - 0.5**4))
    np.testing.assert_allclose(tensorboard_smooth(np.full(50, 2.0), 0.99), 2.0)
    with pytest.raises(ValueError):
        tensorboard_smooth(v, 1.0)


@pytest.mark.slow
def test_a_run_being_written_is_running_then_stopped_when_killed(tmp_path):
    root = tmp_path / "runs"
    proc, run = start(root, "live")
    try:
        [summary] = index_runs(root)
        assert summary.state == "running"
        reader = RunCurves(run)
        reader.update()
        before = len(reader.data().step)
        wait_rows(run, before + 10, proc)
        assert reader.update()
        step = reader.data().step
        assert len(step) >= before + 10
        np.testing.assert_array_equal(step, np.arange(1, len(step) + 1))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        stop(proc)
    [summary] = index_runs(root)
    assert summary.state == "stopped"  # status.json still says running; its writer is gone
    assert json.loads((run / "status.json").read_text())["state"] == "running"
