#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs what quartznetstt needs on a fresh Debian bookworm machine:
#  - GStreamer 1.22 development files and tools, meson, PyGObject with the GStreamer
#    typelibs for examples/bus_words.py (only when run as root and missing);
#  - the pinned ONNX Runtime library, taken from PyPI's onnxruntime wheel, into
#    ${XDG_DATA_HOME:-~/.local/share}/quartznetstt/onnxruntime/, where the plugin and
#    quartznet-transcribe find it without any variable.
# Safe to run again: it only does what is missing.
set -euo pipefail

ORT_VERSION=1.32.0
ORT_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"

apt_packages=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-x meson ninja-build pkg-config python3-pip
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gstreamer1.0-plugins-bad python3-venv)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install: ${missing[*]} (sudo apt-get install ...)" >&2
    exit 1
  fi
fi

if [ ! -f "$ORT_LIB" ]; then
  echo "setup: fetching onnxruntime $ORT_VERSION from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp" "$ORT_DIR" "$ORT_VERSION" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, out, version = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z, z.open(name) as src, open(os.path.join(out, os.path.basename(name)) + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.replace(os.path.join(out, os.path.basename(name)) + ".part", os.path.join(out, os.path.basename(name)))
PY
fi
echo "setup: ONNX Runtime at $ORT_LIB"

# Independent subtitle parsers for the client's tests (SRT and WebVTT read back by pysrt and
# webvtt-py); a venv of their own, so no system Python is touched.
SUBTITLE_VENV="$HOME/.cache/quartznetstt/subtitle-venv"
if ! "$SUBTITLE_VENV/bin/python" -c "import pysrt, webvtt" 2>/dev/null; then
  echo "setup: installing pysrt and webvtt-py into $SUBTITLE_VENV"
  /usr/bin/python3 -m venv "$SUBTITLE_VENV"
  "$SUBTITLE_VENV/bin/pip" install --quiet "pysrt==1.1.2" "webvtt-py==0.6.0"
fi
