"""The launch path (``diffusion-studio`` with no subcommand) puts the main window on
screen before torch is imported, then builds every panel (issue 11: on screen < 2 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# records, at the main window's first paint, whether torch is imported and which panels
# are built; then waits for all of them and quits
CHILD = r"""
import json, os, sys
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow

app = QApplication([sys.argv[0]])
seen = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if "paint" not in seen and event.type() == QEvent.Type.Paint and obj.isWidgetType() \
                and isinstance(obj.window(), QMainWindow):
            window = obj.window()
            seen["paint"] = {"torch": "torch" in sys.modules, "built": list(window.panels),
                             "docks": list(window.docks), "progress": window.progress_label.text()}
            window.all_panels_built.connect(lambda: ready(window))
        return False

def ready(window):
    seen["ready"] = {"torch": "torch" in sys.modules, "built": list(window.panels),
                     "loading": [d.widget().text() for d in window.docks.values() if d.widget().inherits("QLabel")],
                     "device": window.device_label.text(), "schedules": len(window.state.schedules)}
    print("LAUNCH " + json.dumps(seen), flush=True)
    os._exit(0)  # the warm-up thread may still run: no need to wait for it

probe = FirstPaint()
app.installEventFilter(probe)
from studio.cli import main
sys.exit(main([]))
"""


def test_main_window_paints_before_torch_then_every_panel_is_built(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}  # a first start
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=240)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("LAUNCH ")), None)
    assert line is not None, out.stderr[-3000:]
    seen = json.loads(line[len("LAUNCH "):])
    from studio.gui.panels import PANELS

    keys = [spec.key for spec in PANELS]
    first = seen["paint"]
    assert first["torch"] is False and first["built"] == [] and first["docks"] == keys
    assert first["progress"].startswith("Loading torch")
    done = seen["ready"]
    assert done["torch"] is True and sorted(done["built"]) == sorted(keys) and done["loading"] == []
    assert done["device"] == "CPU" or done["device"].startswith("CUDA")
    assert done["schedules"] == 1  # the default state came in after the imports
