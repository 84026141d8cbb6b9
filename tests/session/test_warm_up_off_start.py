"""The optimizer warm-up (the first AdamW imports torch._dynamo, ~3 s) is not part of
building the training session: the app runs it on a background thread after its window
shows, once per process."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from studio.session import AppState
from studio.session.training import TrainingSession
from studio.engine.trainer import warm_up_in_background
TrainingSession(AppState())
print("built", "torch._dynamo" in sys.modules)
thread = warm_up_in_background()
assert warm_up_in_background() is thread and thread.daemon
thread.join(300)
print("warmed", "torch._dynamo" in sys.modules)
"""


def test_session_builds_without_warm_up_and_the_background_one_runs_once():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=400,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["built", "False", "warmed", "True"]
