"""The layers below gui stay Qt-free (DESIGN.md 2), checked in a fresh interpreter."""

import subprocess
import sys


def test_core_and_engine_import_no_qt():
    code = (
        "import sys, studio.core, studio.engine, studio.plugins;"
        "import studio.core.schedules, studio.core.parameterization;"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'superqt') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt leaked into the lower layers: {out.stdout}"
