"""The layers below gui stay Qt-free: every module of studio.core, studio.plugins,
studio.engine and studio.session is imported in a fresh interpreter, and none may pull
in PySide6, pyqtgraph or superqt."""

import json
import subprocess
import sys

QT = ("PySide6", "pyqtgraph", "superqt")
LOWER = ("studio.core", "studio.plugins", "studio.engine", "studio.session")

WALK = """
import importlib, json, pkgutil, sys
found = []
for name in {packages!r}:
    pkg = importlib.import_module(name)
    found.append(name)
    for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), name + "."):
        importlib.import_module(info.name)
        found.append(info.name)
print(json.dumps({{"modules": found, "qt": [m for m in {qt!r} if m in sys.modules]}}))
"""


def walk(packages):
    code = WALK.format(packages=tuple(packages), qt=QT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_below_gui_imports_no_qt():
    result = walk(LOWER)
    modules = set(result["modules"])
    # the walk really reached the modules (an empty walk would pass anything)
    for name in ("studio.engine.trainer", "studio.engine.runs", "studio.session.training",
                 "studio.session.sampling", "studio.core.samplers.base", "studio.plugins.discovery"):
        assert name in modules
    assert len(modules) > 40
    assert result["qt"] == [], f"Qt leaked into the lower layers: {result['qt']}"


def test_the_walk_sees_qt_where_it_is():
    """The same walk over a gui module reports PySide6: the check can fail."""
    assert "PySide6" in walk(("studio.gui.job_bridge",))["qt"]
