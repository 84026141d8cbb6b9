"""Checks made before the app creates its QApplication, without importing Qt or torch.

Qt's own answer to a missing screen or a missing system library is an abort with
"Could not load the Qt platform plugin ... Reinstalling the application may fix this
problem", which names neither the cause nor the fix. :func:`problem` finds the two
causes seen on fresh Debian machines (no display at all; shared libraries of the platform
plugin that pip cannot install) and says in one line what to do.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

# The Debian/Ubuntu package of each system library PySide6's platform plugins load
# (docs/PITFALLS.md); a library not listed here is still named, without a package.
DEBIAN_PACKAGES = {
    "libGL.so.1": "libgl1", "libGLX.so.0": "libglx0", "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3", "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0", "libwayland-egl.so.1": "libwayland-egl1",
}

INSTALL_SCRIPT = "scripts/install-system-deps.sh"


def platform_name(environ: Mapping[str, str]) -> str | None:
    """The platform plugin Qt will try first: the forced one (``QT_QPA_PLATFORM``, first
    of a ``;`` list, options after ``:`` dropped), else None (Qt's default)."""
    forced = environ.get("QT_QPA_PLATFORM", "").strip()
    if not forced:
        return None
    return forced.split(";")[0].split(":")[0].strip() or None


def plugin_file(platform: str, environ: Mapping[str, str]) -> Path | None:
    """``libq<platform>.so`` of the PySide6 that will run, found without importing it."""
    folders = [Path(p) for p in environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if p]
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "Qt" / "plugins" / "platforms" for p in spec.submodule_search_locations]
    for folder in folders:
        candidate = folder / f"libq{platform}.so"
        if candidate.is_file():
            return candidate
    return None


def not_found_in_ldd(text: str) -> list[str]:
    """Library names ``ldd`` reports as ``name => not found`` (each once, in order)."""
    names = re.findall(r"^\s*(\S+)\s+=>\s+not found", text, flags=re.MULTILINE)
    return list(dict.fromkeys(names))


def missing_libraries(plugin: Path, ldd: str | None = None, probe: Callable[[str], bool] | None = None) -> list[str]:
    """Shared libraries ``plugin`` needs (directly or through Qt's own libraries) that
    the dynamic loader cannot find. ``ldd`` walks the whole tree; where there is no
    ``ldd`` (a minimal image), each known system library is tried with ``ctypes.CDLL``."""
    ldd = shutil.which("ldd") if ldd is None else ldd
    if ldd:
        try:
            out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
            return not_found_in_ldd(out.stdout + out.stderr)
        except (OSError, subprocess.SubprocessError):
            pass
    # The xcb plugin and Qt's own libraries link every library of the table but the
    # wayland ones; the wayland plugin links those too.
    probe = probe or _loads
    wanted = [name for name in DEBIAN_PACKAGES if "wayland" not in name or "wayland" in plugin.name]
    return [name for name in wanted if not probe(name)]


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def install_line(libraries: list[str]) -> str:
    """``apt-get install ...`` for the Debian packages of ``libraries``, with sudo when
    not root; an empty string when none is known."""
    packages = list(dict.fromkeys(DEBIAN_PACKAGES[n] for n in libraries if n in DEBIAN_PACKAGES))
    if not packages:
        return ""
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {' '.join(packages)}"


def x_server_reachable(display: str) -> bool:
    """Whether a local X display (``:N`` / ``unix:N``) has a socket to connect to; a
    remote or forwarded display (``host:N``) is assumed reachable."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display.strip())
    if not match:
        return True
    path = f"/tmp/.X11-unix/X{match.group(1)}"
    for address in ("\0" + path, path):  # Linux X servers listen on an abstract socket too
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(address)
                return True
            except OSError:
                continue
    return False


RUN_ANYWAY = "run the app on a virtual screen with `xvfb-run -a diffusion-studio`, or set QT_QPA_PLATFORM=offscreen for scripts"


def problem(environ: Mapping[str, str] | None = None, system: str | None = None,
            missing: Callable[[Path], list[str]] | None = None,
            reachable: Callable[[str], bool] | None = None) -> str | None:
    """The one-line reason the app cannot show a window here, or None when it can.
    ``environ``, ``system``, ``missing`` and ``reachable`` stand in for the real process
    environment, ``sys.platform``, the library lookup and the X socket in tests."""
    environ = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    missing, reachable = missing or missing_libraries, reachable or x_server_reachable
    if not system.startswith("linux"):
        return None  # macOS and Windows plugins ship everything they load
    platform = platform_name(environ)
    display, wayland = environ.get("DISPLAY", "").strip(), environ.get("WAYLAND_DISPLAY", "").strip()
    if platform is None:
        if not display and not wayland:
            return f"no display: DISPLAY and WAYLAND_DISPLAY are unset; {RUN_ANYWAY}"
        platform = "wayland" if wayland and not display else "xcb"
    if platform == "xcb":
        if not display:
            return f"no display: QT_QPA_PLATFORM=xcb but DISPLAY is unset; {RUN_ANYWAY}"
        if not reachable(display):
            return f"no X server answers on DISPLAY={display}; start one, or {RUN_ANYWAY}"
    plugin = plugin_file(platform, environ)
    if plugin is None:
        return None  # an unknown platform name: Qt lists the ones it has
    absent = missing(plugin)
    if not absent:
        return None
    line = install_line(absent)
    fix = f"; install them with `{line}` (or run {INSTALL_SCRIPT})" if line else ""
    return f"the Qt {platform} platform plugin cannot load: missing system libraries {', '.join(absent)}{fix}"


_passed = False


def report(environ: Mapping[str, str] | None = None) -> int:
    """Print :func:`problem`'s line on stderr and return 2 (the usage/environment exit
    code) if there is one, else 0. A pass is remembered: the CLI and the app both ask."""
    global _passed
    if _passed and environ is None:
        return 0
    reason = problem(environ)
    if reason:
        print(f"diffusion-studio: {reason}", file=sys.stderr)
        return 2
    _passed = environ is None
    return 0
