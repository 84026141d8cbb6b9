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
