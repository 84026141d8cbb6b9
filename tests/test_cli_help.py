"""`diffusion-studio --help` and every subcommand's `--help` answer without importing
torch or Qt (importing them is what made `--help` take seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from studio.cli import COMMANDS

SCRIPT = """
import contextlib, io, sys
from studio.__main__ import main
for argv in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv.split())
    assert code == 0, (argv, code)
    assert "usage: diffusion-studio" in out.getvalue(), argv
heavy = sorted(m for m in ("torch", "PySide6", "numpy", "pyqtgraph") if m in sys.modules)
print("heavy:", *heavy)
"""


def test_help_of_every_command_imports_neither_torch_nor_qt():
    argvs = ["--help"] + [f"{name} --help" for name in COMMANDS]
    out = subprocess.run([sys.executable, "-c", SCRIPT, *argvs], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["heavy:"], out.stdout
