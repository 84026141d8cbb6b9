"""A non-editable install ships resources/ inside the package as studio.resources:
`diffusion-studio train ddpm_toy` finds its config there, away from the source tree.
Offline and quick: the wheel is built without isolation and installed with --target
beside the venv's own packages (torch is reused, nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("studio", "resources", "plugins", "setup.py", "pyproject.toml", "README.md")


@pytest.mark.slow
def test_non_editable_install_finds_the_shipped_config(tmp_path):
    src = tmp_path / "src"  # a copy: pip's in-tree build must not write build/ into the shared checkout
    src.mkdir()
    for name in SHIPPED:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, src / name)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(target), str(src)]
    subprocess.run(pip, check=True, timeout=300, capture_output=True)
    installed = target / "studio" / "resources"
    assert (installed / "configs" / "ddpm_toy.toml").is_file()
    assert (installed / "icons" / "diffusion-studio.png").is_file()
    assert (installed / "digits_classifier.safetensors").is_file()
    assert not (target / "resources").exists()  # inside the package, not a top-level package

    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import studio, studio.engine.presets as p; print(studio.__file__); "
                            "print(p.PRESET_DIR)"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    module, presets = where.stdout.split()
    assert Path(module).is_relative_to(target) and Path(presets) == installed / "configs"
    out = subprocess.run([str(target / "bin" / "diffusion-studio"), "train", "ddpm_toy", "--steps", "3", "--out",
                          str(tmp_path / "run")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_00000003.safetensors").is_file()
