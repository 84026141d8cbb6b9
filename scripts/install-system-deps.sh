#!/usr/bin/env sh
# The Debian/Ubuntu packages the PySide6 wheels load and pip cannot install (docs/PITFALLS.md):
# Qt itself (offscreen too), the xcb platform plugin for a real X screen, and a virtual
# screen (xvfb-run) plus the tools scripts/screenshots.py uses. Only where apt-get exists;
# as root, or through sudo. Installs nothing when every package is already there.
set -eu

PACKAGES="libgl1 libegl1 libglib2.0-0 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3
libx11-6 libx11-xcb1 libxcb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0
libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1
xvfb xauth x11-apps imagemagick"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: no apt-get here; install your system's packages for Qt's xcb plugin" \
         "(the Debian names: $(echo $PACKAGES | tr '\n' ' '))" >&2
    exit 0
fi

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-system-deps: every system package is installed" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-system-deps: not root and no sudo; as root run: apt-get install$missing" >&2
    exit 1
fi
echo "install-system-deps: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # one word per package
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
