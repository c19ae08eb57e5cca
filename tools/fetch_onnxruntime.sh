#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Fetches the pinned ONNX Runtime library from PyPI's wheel for one machine architecture and
# installs it into a folder, checking the wheel's SHA-256 first. Used by tools/setup.sh (the
# machine's own architecture), tools/arm64_check.sh (aarch64 on an x86_64 machine) and
# tools/gpu_check.sh.
#
#   tools/fetch_onnxruntime.sh [--gpu] ARCH DIR
#
# ARCH: x86_64 or aarch64 (arm64). Without --gpu: PyPI `onnxruntime` (CPU), the file
# DIR/libonnxruntime.so.$ORT_VERSION. With --gpu (x86_64 only): PyPI `onnxruntime-gpu` (CUDA 13
# build) and its provider libraries into DIR, and the CUDA 13 / cuDNN 9 libraries of NVIDIA's
# PyPI wheels (tools/gpu-requirements.txt, hash-pinned) into DIR/cuda/, where the engine loads
# them from (engine/src/model/provider.rs): no system CUDA needed. Safe to run again: only
# what is missing is fetched. Prints the library's path last.
set -euo pipefail

# The CPU build quartznetstt is tested with; runtime.rs searches for this file name.
ORT_VERSION=1.32.0
# The GPU build: onnxruntime-gpu has no 1.32.0 on PyPI; 1.31.1 is the newest (API 31, which
# `ort` 2.0.0-rc.15 targets), built for CUDA 13 and cuDNN 9.
ORT_GPU_VERSION=1.31.1

gpu=0
if [ "${1:-}" = "--gpu" ]; then
  gpu=1
  shift
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--gpu] x86_64|aarch64 DIR" >&2
  exit 2
fi
arch=$1
dir=$2

# One wheel per architecture, so its checksum is fixed (pip would otherwise take whichever of
# several manylinux tags it likes best).
case "$arch:$gpu" in
  x86_64:0)
    package=onnxruntime version=$ORT_VERSION platform=manylinux_2_28_x86_64
    sha256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d ;;
  aarch64:0 | arm64:0)
    package=onnxruntime version=$ORT_VERSION platform=manylinux_2_28_aarch64
    sha256=2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c ;;
  x86_64:1)
    package=onnxruntime-gpu version=$ORT_GPU_VERSION platform=manylinux_2_28_x86_64
    sha256=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6 ;;
  *:1)
    echo "fetch_onnxruntime: no GPU build of ONNX Runtime for $arch on PyPI (x86_64 only)" >&2
    exit 1 ;;
  *)
    echo "fetch_onnxruntime: no ONNX Runtime wheel on PyPI for $arch (x86_64, aarch64)" >&2
    exit 1 ;;
esac
lib="$dir/libonnxruntime.so.$version"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Downloads one wheel with pip and checks its SHA-256 against the pin.
fetch_wheel() {
  local name=$1 ver=$2 plat=$3 sum=$4
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform "$plat" -d "$tmp" "$name==$ver" >&2
  local wheel
  wheel=$(ls "$tmp"/"${name//-/_}"-"$ver"-*.whl)
  echo "$sum  $wheel" | sha256sum --check --quiet || {
    echo "fetch_onnxruntime: $wheel does not have the pinned SHA-256 $sum" >&2
    exit 1
  }
  echo "$wheel"
}

mkdir -p "$dir"
if [ ! -f "$lib" ]; then
  echo "fetch_onnxruntime: fetching $package $version ($platform) from PyPI" >&2
  wheel=$(fetch_wheel "$package" "$version" "$platform" "$sha256")
  # The library, and with the GPU build the provider libraries it opens from its own folder.
  python3 - "$wheel" "$dir" "$version" <<'PY'
import os, shutil, sys, zipfile
wheel, out, version = sys.argv[1:]
wanted = {f"onnxruntime/capi/libonnxruntime.so.{version}",
          "onnxruntime/capi/libonnxruntime_providers_shared.so",
          "onnxruntime/capi/libonnxruntime_providers_cuda.so",
          "onnxruntime/capi/libonnxruntime_providers_tensorrt.so"}
with zipfile.ZipFile(wheel) as z:
    # The main library last: its presence says the install is complete.
    for name in sorted(wanted & set(z.namelist()), key=lambda n: "so." in n):
        target = os.path.join(out, os.path.basename(name))
        with z.open(name) as src, open(target + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(target + ".part", target)
PY
fi

# QUARTZNETSTT_SKIP_CUDA_LIBS=1: the GPU build's own libraries only (tools/gpu_check.sh pack:
# the device machine has CUDA's).
if [ $gpu -eq 1 ] && [ "${QUARTZNETSTT_SKIP_CUDA_LIBS:-0}" != 1 ] && [ ! -f "$dir/cuda/.complete" ]; then
  echo "fetch_onnxruntime: fetching the CUDA 13 and cuDNN 9 libraries from PyPI (about 1.5 GB)" >&2
  requirements="$(dirname "$0")/gpu-requirements.txt"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
    --require-hashes -r "$requirements" -d "$tmp/cuda"
  mkdir -p "$dir/cuda"
  # Every shared library of the wheels, flat in one folder (the engine preloads them by name).
  python3 - "$tmp/cuda" "$dir/cuda" <<'PY'
import glob, os, re, shutil, sys, zipfile
wheels, out = sys.argv[1:]
for wheel in glob.glob(os.path.join(wheels, "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("nvidia/") and "/lib/" in name and re.search(r"\.so(\.\d+)*$", name):
                target = os.path.join(out, os.path.basename(name))
                with z.open(name) as src, open(target + ".part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(target + ".part", target)
PY
  touch "$dir/cuda/.complete"
fi
echo "$lib"
