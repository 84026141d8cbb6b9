"""The sampler comparison job on a tiny trained toy run: one row per (sampler, budget)
with the NFE counted on the network, the same prior for every cell, cancel between
cells, and the same numbers twice with one seed."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.core.errors import ConfigError, StudioError, UnknownNameError
from studio.engine.compare import compare_samplers, file_sha256
from studio.engine.control import JobControl
from studio.engine.events import CompareRow, Finished, Started
from studio.engine.jobs import train_job
from studio.engine.runs import RunDir
from studio.engine.trajectory import TrajectoryReader

TINY = {
    "data": {"source": "toy", "name": "moons", "n": 2000},
    "schedule": {"steps": 50},
    "network": {"hidden": 32, "depth": 1},
    "train": {"steps": 150, "batch_size": 128, "log_every": 50, "checkpoint_every": 150, "preview_every": 1000},
    "sample": {"steps": 20, "n": 16},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "run"
    for _ in train_job(TINY, path):
        pass
    return path


def rows_of(events):
    return [e.row for e in events if isinstance(e, CompareRow)]


def test_one_row_per_cell_with_the_nfe_counted_on_the_network(run, tmp_path):
    options = {"langevin": {"n_steps_each": 2}}
    events = list(compare_samplers(run, ["ancestral", "ddim", "langevin"], [10, 3], n=200, seed=1, options=options, trajectory_dir=tmp_path))
    assert isinstance(events[0], Started) and events[0].total_steps == 6 and isinstance(events[-1], Finished)
    rows = rows_of(events)
    assert [(r["sampler"], r["nfe_budget"]) for r in rows] == [(s, b) for s in ("ancestral", "ddim", "langevin") for b in (3, 10)]
    assert events[-1].result["rows"] == rows and not events[-1].result["cancelled"]
    by = {(r["sampler"], r["nfe_budget"]): r for r in rows}
    for s in ("ancestral", "ddim"):  # one call a step
        assert by[s, 3]["nfe"] == by[s, 3]["steps"] == 3 and by[s, 10]["nfe"] == 10
    # Langevin: 2 calls per noise level plus the final denoising call, within the budget
    assert (by["langevin", 10]["steps"], by["langevin", 10]["nfe"]) == (4, 9)
    assert (by["langevin", 3]["steps"], by["langevin", 3]["nfe"]) == (1, 3)
    ckpt = RunDir(run).latest_checkpoint()
    for r in rows:
        assert r["checkpoint_sha256"] == file_sha256(ckpt) and r["studio_version"] == studio.__version__
        assert r["n"] == 200 and r["seed"] == 1 and r["wall_s"] > 0
        assert np.isfinite(r["sliced_wasserstein"]) and np.isfinite(r["mmd"])
    # more steps of a trained model: closer to the data than the prior draw it started from
    assert by["ddim", 10]["sliced_wasserstein"] < 0.5
    # every cell started from the same prior draw (its first state) and wrote its trajectory
    cells = [e for e in events if isinstance(e, CompareRow)]
    firsts = []
    for e in cells:
        reader = TrajectoryReader(e.trajectory)
        assert len(reader) == reader.steps and reader.samples().shape == (200, 2)
        firsts.append(reader.step(0)["x_t"])
        reader.close()
    for x in firsts[1:]:
        np.testing.assert_array_equal(x, firsts[0])
    assert cells[0].points.shape == (200, 2) and cells[0].images is None


def test_two_call_steps_count_twice_and_an_adaptive_solver_gets_one_cell(run):
    from studio.core.registry import SAMPLERS

    rows = rows_of(compare_samplers(run, ["heun", "rk45"], [4, 7], n=50, options={"rk45": {"rtol": 1e-3, "atol": 1e-3}}))
    assert [(r["sampler"], r["nfe_budget"]) for r in rows] == [("heun", 4), ("heun", 7), ("rk45", None)]
    method = RunDir(run).load_model()[0]
    heun = SAMPLERS.get("heun")
    for r in rows[:2]:  # Heun: 2 calls a step but the last, counted on the net
        assert r["nfe"] == heun.nfe(method, r["steps"]) <= r["nfe_budget"] and r["nfe"] > r["steps"]
    assert (rows[0]["steps"], rows[1]["steps"]) == (2, 4)
    assert rows[2]["nfe"] > 2  # whatever dopri5 needed at that tolerance, counted


def test_same_seed_same_numbers_other_seed_other_numbers(run):
    def figures(seed):
        rows = rows_of(compare_samplers(run, ["ancestral", "ddim"], [4], n=100, seed=seed))
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]

    first = figures(3)
    assert figures(3) == first
    assert figures(4)[0]["sliced_wasserstein"] != first[0]["sliced_wasserstein"]


def test_cancel_between_cells(run):
    control = JobControl()
    job = compare_samplers(run, ["ancestral", "ddim"], [2, 3], n=50, control=control)
    seen = []
    for event in job:
        seen.append(event)
        if isinstance(event, CompareRow):
            control.cancel()
    assert isinstance(seen[-1], Finished) and seen[-1].result["cancelled"]
    assert len(rows_of(seen)) == 1 and len(seen[-1].result["rows"]) == 1


def test_bad_arguments_raise_before_the_job_starts(run, tmp_path):
    with pytest.raises(UnknownNameError, match="nosuch"):
        compare_samplers(run, ["nosuch"], [5])
    with pytest.raises(ConfigError, match="nfe = 0"):
        compare_samplers(run, ["ddim"], [0])
    with pytest.raises(ConfigError, match="twice"):
        compare_samplers(run, ["ddim", "ddim"], [5])
    with pytest.raises(StudioError, match="eta"):
        compare_samplers(run, ["ddim"], [5], options={"ddim": {"eta": "x"}})
    with pytest.raises(StudioError, match="not a run directory|does not exist"):
        compare_samplers(tmp_path, ["ddim"], [5])
