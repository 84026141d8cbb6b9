import os

# Qt runs headless in every test (docs/PITFALLS.md); set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """QSettings and other per-user files of a test never touch the user's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # 2-core machines: one intra-op thread keeps tests from oversubscribing (docs/PITFALLS.md)
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------
# CLI runs several tests read, trained in the background from collection on
# (tests/background_runs.py)
# ----------------------------------------------------------------------------------

_BACKGROUND = pytest.StashKey()


def pytest_collection_finish(session):
    from tests.background_runs import FIXTURES, BackgroundRuns

    wanted = {run for item in session.items for name in getattr(item, "fixturenames", ()) for run in FIXTURES.get(name, ())}
    if wanted and not session.config.option.collectonly:
        runs = session.config.stash[_BACKGROUND] = BackgroundRuns()
        runs.start(wanted)


def pytest_unconfigure(config):
    runs = config.stash.get(_BACKGROUND, None)
    if runs is not None:
        runs.close()


def _background(request, name):
    from tests.background_runs import BackgroundRuns

    config = request.config
    if _BACKGROUND not in config.stash:
        config.stash[_BACKGROUND] = BackgroundRuns()
    return config.stash[_BACKGROUND].get(name)


@pytest.fixture(scope="session")
def quick_digits_run(request):
    """quick_digits trained by ``diffusion-studio train`` (800 steps); its stderr in .stderr.
    Readers may add samples and evaluation.json, never change what training wrote."""
    return _background(request, "quick_digits_run")["quick_digits_run"]


@pytest.fixture(scope="session")
def quick_toy_run(request):
    """quick_toy trained by ``diffusion-studio train`` (1500 steps); its stderr in .stderr.
    Readers may add samples and evaluation.json, never change what training wrote."""
    return _background(request, "quick_toy_run")["quick_toy_run"]


@pytest.fixture(scope="session")
def tiny_runs(request):
    """{"base", "low_lr", "nan"}: tiny 2-D runs ``diffusion-studio train`` made (tests/cli_runs.py
    settings; 40 steps, lr 1e-3 for low_lr, a NaN stop with exit code 3 for nan). Readers
    copy them into a folder of their own (shutil.copytree)."""
    runs = _background(request, "tiny_runs")
    return {name.removeprefix("tiny_"): run.path for name, run in runs.items()}
