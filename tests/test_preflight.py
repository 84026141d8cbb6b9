"""The pre-flight check: a missing screen or system library is one line and exit 2,
never Qt's abort (it runs before Qt or torch is imported)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from studio import cli, preflight

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd1c3f2000)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0a1c000000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0a1bf00000)
"""


def test_ldd_not_found_lines_are_read_once_each():
    assert preflight.not_found_in_ldd(LDD_OUTPUT) == ["libxcb-icccm.so.4", "libxcb-cursor.so.0"]


def test_no_display_is_named_with_how_to_run_anyway():
    reason = preflight.problem({}, system="linux", missing=lambda plugin: [])
    assert reason.startswith("no display")
    assert "xvfb-run -a diffusion-studio" in reason and "QT_QPA_PLATFORM=offscreen" in reason
    assert "DISPLAY" in preflight.problem({"QT_QPA_PLATFORM": "xcb"}, system="linux", missing=lambda p: [])


def test_unreachable_x_server_is_named():
    reason = preflight.problem({"DISPLAY": ":7"}, system="linux", missing=lambda p: [], reachable=lambda d: False)
    assert "DISPLAY=:7" in reason


def test_forced_offscreen_and_other_systems_need_no_display():
    assert preflight.problem({"QT_QPA_PLATFORM": "offscreen"}, system="linux", missing=lambda p: []) is None
    assert preflight.problem({}, system="darwin") is None


def test_missing_xcb_libraries_are_named_with_the_apt_line():
    seen = []

    def missing(plugin):
        seen.append(plugin)
        return ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]

    reason = preflight.problem({"DISPLAY": ":0"}, system="linux", missing=missing, reachable=lambda d: True)
    if not seen:
        pytest.skip("this PySide6 has no xcb plugin")
    assert seen[0].name == "libqxcb.so"
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in reason
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in reason


def test_without_ldd_each_library_is_probed(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    absent = {"libxcb-icccm.so.4", "libdbus-1.so.3"}
    tried = []

    def probe(name):
        tried.append(name)
        return name not in absent

    found = preflight.missing_libraries(plugin, ldd="", probe=probe)
    assert sorted(found) == sorted(absent)
    assert "libxcb-cursor.so.0" in tried and not any("wayland" in n for n in tried)


def test_the_command_prints_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(preflight, "_passed", False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert cli.main([]) == 2
    assert cli.main(["gui"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("diffusion-studio: no display")


def test_the_command_names_missing_libraries(monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(preflight, "_passed", False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(preflight, "x_server_reachable", lambda d: True)
    monkeypatch.setattr(preflight, "plugin_file", lambda platform, environ: Path("libqxcb.so"))
    monkeypatch.setattr(preflight, "missing_libraries", lambda plugin: ["libxcb-keysyms.so.1"])
    assert cli.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "libxcb-keysyms.so.1" in err[0] and "apt-get install libxcb-keysyms1" in err[0]


def test_no_display_in_a_real_process_exits_2_before_importing_qt(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = "import sys; from studio.__main__ import main; c = main([]); print('PySide6' in sys.modules, 'torch' in sys.modules); sys.exit(c)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 2
    assert out.stdout.split() == ["False", "False"]
    assert out.stderr.count("\n") == 1 and "no display" in out.stderr


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-system-deps.sh"


def script_packages() -> set[str]:
    text = SCRIPT.read_text()
    return set(text.split('PACKAGES="', 1)[1].split('"', 1)[0].split())


def test_install_script_brings_every_package_the_check_can_ask_for():
    asked = {pkg for lib, pkg in preflight.DEBIAN_PACKAGES.items()
             if "wayland" not in lib and lib not in ("libGLX.so.0", "libGLdispatch.so.0")}  # libgl1 pulls those
    assert asked <= script_packages()
    assert {"xvfb", "xauth"} <= script_packages()


def test_install_script_without_apt_get_installs_nothing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("tr",):
        (bin_dir / tool).symlink_to(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip())
    out = subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "no apt-get" in out.stderr and "libxcb-cursor0" in out.stderr
