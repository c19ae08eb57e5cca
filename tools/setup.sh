#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs what quartznetstt needs on a fresh Debian bookworm machine:
#  - GStreamer 1.22 development files and tools, meson, PyGObject with the GStreamer
#    typelibs for examples/bus_words.py (only when run as root and missing);
#  - the pinned ONNX Runtime library, taken from PyPI's onnxruntime wheel, into
#    ${XDG_DATA_HOME:-~/.local/share}/quartznetstt/onnxruntime/, where the plugin and
#    quartznet-transcribe find it without any variable.
#  - with --gpu (x86_64): also the GPU build of ONNX Runtime (PyPI onnxruntime-gpu) and the
#    CUDA 13 / cuDNN 9 libraries of NVIDIA's PyPI wheels (about 1.5 GB) into
#    ${XDG_DATA_HOME:-~/.local/share}/quartznetstt/onnxruntime-gpu/, for
#    execution-provider=cuda (README, *Platforms*).
# Safe to run again: it only does what is missing.
set -euo pipefail

gpu=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    *) echo "usage: $0 [--gpu]" >&2; exit 2 ;;
  esac
done

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
  # The wheel of this machine's architecture (x86_64 or aarch64), checked against its pinned
  # SHA-256.
  bash "$(dirname "$0")/fetch_onnxruntime.sh" "$(uname -m)" "$ORT_DIR" >/dev/null
fi
echo "setup: ONNX Runtime at $ORT_LIB"

if [ $gpu -eq 1 ]; then
  ORT_GPU_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/onnxruntime-gpu"
  gpu_lib=$(bash "$(dirname "$0")/fetch_onnxruntime.sh" --gpu "$(uname -m)" "$ORT_GPU_DIR")
  echo "setup: GPU build of ONNX Runtime at $gpu_lib; to use it (execution-provider=cuda):"
  echo "  export QUARTZNETSTT_ONNXRUNTIME=$gpu_lib"
fi

# Independent subtitle parsers for the client's tests (SRT and WebVTT read back by pysrt and
# webvtt-py); a venv of their own, so no system Python is touched.
SUBTITLE_VENV="$HOME/.cache/quartznetstt/subtitle-venv"
if ! "$SUBTITLE_VENV/bin/python" -c "import pysrt, webvtt" 2>/dev/null; then
  echo "setup: installing pysrt and webvtt-py into $SUBTITLE_VENV"
  /usr/bin/python3 -m venv "$SUBTITLE_VENV"
  "$SUBTITLE_VENV/bin/pip" install --quiet "pysrt==1.1.2" "webvtt-py==0.6.0"
fi
