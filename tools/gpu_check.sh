#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The GPU check (README, *Platforms*): on a machine with an NVIDIA GPU (sm_90: H100, H200),
# the engine's CUDA execution provider must give the same words as the CPU, and how fast it
# is: real-time factor and concurrent live streams per GPU, for the bundled model (hama-en)
# and a full-size random-weight FastConformer-CTC large (tools/fullsize_models.py).
#
# Made for this workplace's device machine, which cannot reach any registry and has neither
# Rust nor GStreamer, but has NVIDIA's driver and CUDA 13 / cuDNN 9 libraries (PyTorch's
# nvidia-* wheels). Everything else is built and gathered here, and carried:
#
#   bash tools/gpu_check.sh pack     # here: .gpu/1 and .gpu/2 (git-ignored), sizes printed
#   bash tools/gpu_check.sh aside    # here: moves the tracked files over 1 MB out of the tree
#   # device machine, two calls back to back (it stays warm 30 s after a call):
#   #   run(command="bash tools/gpu_check.sh receive 1", carry=[".gpu/1"], timeout_s=120)
#   #   run(command="bash tools/gpu_check.sh receive 2 && bash tools/gpu_check.sh run",
#   #       carry=[".gpu/2"], timeout_s=540)
#   bash tools/gpu_check.sh back     # here: puts the moved files back
#
# Why two calls and `aside`: a call carries at most 64 MiB, the tree included. The tracked tree
# alone is 79 MiB (five files over 1 MB: 57 MiB), and onnxruntime-gpu's CUDA provider library
# is 284 MB (271 MiB); its cubins for GPUs other than sm_90 (142 MB) are zeroed here, which
# leaves 49 MiB compressed (xz). `aside` leaves a 22 MiB tree; call 1 carries 37 MiB of the
# provider library, call 2 the rest with the runtime, the bench, the models the check needs
# (hama-en and its language model, the FastConformer's graph without its weights: they are
# redrawn there, tools/gpu_weights.py).
#
# `run` prints every figure and writes them to $OUT/gpu_check.txt; it exits 1 if the words
# on CUDA differ from the CPU's. What users install is the unmodified wheel (tools/setup.sh
# --gpu); the zeroed copy only fits the check through the carry limit and runs only on sm_90.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pack=$root/.gpu
device=/tmp/quartznetstt-gpu-check
aside=/tmp/quartznetstt-aside
sample=samples/LJ001-0001.wav
part1_bytes=$((37 * 1024 * 1024))

# The sm_90 cubins of a CUDA fat binary kept, every other GPU's zeroed (same size, same
# layout: the zeros compress away).
keep_sm90() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
src, dst = sys.argv[1:]
data = bytearray(open(src, "rb").read())
MAGIC = 0xBA55ED50
pos, zeroed = 0, 0
while True:
    pos = data.find(struct.pack("<I", MAGIC), pos)
    if pos < 0:
        break
    _, version, header, size = struct.unpack_from("<IHHQ", data, pos)
    if version != 1 or header != 16:
        pos += 4
        continue
    entry, end = pos + header, pos + header + size
    while entry < end:
        kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
        arch, = struct.unpack_from("<I", data, entry + 28)
        if not (kind == 2 and arch == 90):
            start = entry + entry_header
            data[start:start + payload] = bytes(payload)
            zeroed += payload
        entry += entry_header + payload
    pos = end
open(dst, "wb").write(data)
print(f"gpu_check: {zeroed / 1e6:.0f} MB of cubins for other GPUs zeroed", file=sys.stderr)
PY
}

cmd_pack() {
  cd "$root"
  rm -rf "$pack"
  mkdir -p "$pack/1" "$pack/2" "$pack/work"
  # The wheel, its libraries and the zeroed copy: about 1.2 GB while packing.
  if [ "$(df -Pk "$pack" | awk 'NR == 2 {print $4}')" -lt 1500000 ]; then
    echo "gpu_check: pack needs about 1.5 GB free beside $pack" >&2
    exit 1
  fi
  local work=$pack/work
  echo "gpu_check: onnxruntime-gpu's libraries (PyPI, SHA-256 pinned)"
  QUARTZNETSTT_SKIP_CUDA_LIBS=1 bash tools/fetch_onnxruntime.sh --gpu x86_64 "$work/ort" >/dev/null
  keep_sm90 "$work/ort/libonnxruntime_providers_cuda.so" "$work/cuda-sm90.so"
  rm "$work/ort/libonnxruntime_providers_cuda.so"
  xz -T2 -9 -c "$work/cuda-sm90.so" > "$work/cuda-sm90.so.xz"
  split -b "$part1_bytes" -d -a 1 "$work/cuda-sm90.so.xz" "$work/cuda-sm90.so.xz.part"
  mv "$work/cuda-sm90.so.xz.part0" "$pack/1/"
  mv "$work/cuda-sm90.so.xz.part1" "$pack/2/"
  xz -T2 -9 -c "$work/ort/libonnxruntime.so.1.31.1" > "$pack/2/libonnxruntime.so.1.31.1.xz"
  cp "$work/ort/libonnxruntime_providers_shared.so" "$work/ort/libonnxruntime_providers_tensorrt.so" \
    "$pack/2/"
  (cd "$work" && sha256sum cuda-sm90.so > "$pack/2/SHA256SUMS" &&
    cd ort && sha256sum libonnxruntime.so.1.31.1 >> "$pack/2/SHA256SUMS")

  echo "gpu_check: building the bench (engine/examples/provider_bench.rs, release)"
  nice -n 10 cargo build --release -p quartznet-engine --example provider_bench
  local target=${CARGO_TARGET_DIR:-$root/target}
  xz -T2 -9 -c "$target/release/examples/provider_bench" > "$pack/2/provider_bench.xz"

  echo "gpu_check: the models"
  mkdir -p "$pack/2/models"
  cp models/hama-en.onnx models/hama-en.json models/hama-en.lexicon.gz \
    models/quartznet-en.arpa.gz "$pack/2/models/"
  local fc=.devdata/fullsize/fastconformer_ctc_large
  if [ ! -f "$fc/model.onnx" ]; then
    echo "gpu_check: exporting the full-size FastConformer (NeMo, a few minutes)"
    nice -n 10 /opt/venvs/nemo3/bin/python tools/fullsize_models.py --only fastconformer_ctc_large \
      --no-int8 --out .devdata/fullsize
  fi
  /opt/venvs/nemo3/bin/python tools/gpu_weights.py strip "$fc/model.onnx" "$pack/2/fastconformer"
  cp "$fc/model.json" "$pack/2/fastconformer/"
  rm -rf "$work"
  du -sh "$pack/1" "$pack/2"
  echo "gpu_check: the tracked tree once aside: $(git ls-files -z | xargs -0 du -b | awk '$1 < 1048576 {s += $1} END {printf "%.1f MiB", s / 1048576}')"
}

# The tracked files over 1 MB leave the tree while the device calls run (the check needs
# none of them from the tree: `pack` copied the ones it uses into .gpu/2).
cmd_aside() {
  cd "$root"
  mkdir -p "$aside"
  git ls-files -z | xargs -0 du -b | awk '$1 >= 1048576 {print $2}' | while read -r f; do
    mkdir -p "$aside/$(dirname "$f")"
    mv "$f" "$aside/$f"
    echo "gpu_check: moved $f to $aside"
  done
}

cmd_back() {
  cd "$root"
  (cd "$aside" && find . -type f) | while read -r f; do
    mkdir -p "$(dirname "$f")"
    mv "$aside/$f" "$f"
  done
  git status --short
}

cmd_receive() {
  mkdir -p "$device"
  cp -r "$root/.gpu/$1/." "$device/"
  echo "gpu_check: received part $1: $(du -sh "$device" | cut -f1) in $device"
}

unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

cmd_run() {
  cd "$device"
  local report=${OUT:-$device}/gpu_check.txt
  exec > >(tee "$report") 2>&1
  mkdir -p ort
  cat cuda-sm90.so.xz.part0 cuda-sm90.so.xz.part1 > cuda-sm90.so.xz
  unxz_to cuda-sm90.so.xz ort/libonnxruntime_providers_cuda.so
  cp ort/libonnxruntime_providers_cuda.so cuda-sm90.so
  unxz_to libonnxruntime.so.1.31.1.xz ort/libonnxruntime.so.1.31.1
  cp libonnxruntime_providers_shared.so libonnxruntime_providers_tensorrt.so ort/
  (cp ort/libonnxruntime.so.1.31.1 . && sha256sum -c SHA256SUMS)
  rm -f cuda-sm90.so libonnxruntime.so.1.31.1 cuda-sm90.so.xz
  unxz_to provider_bench.xz provider_bench
  chmod +x provider_bench

  # CUDA 13 and cuDNN 9 from the image's nvidia-* wheels, where the engine looks: ort/cuda/.
  mkdir -p ort/cuda
  local site
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
  if [ -n "$site" ]; then
    find "$site/nvidia" -name 'lib*.so*' -path '*/lib/*' -exec ln -sf {} ort/cuda/ \;
  fi
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/libcuda.so.1" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  echo "== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  nproc
  ls ort/cuda | tr '\n' ' '
  echo

  "${PYTHON:-python3}" "$root/tools/gpu_weights.py" fill fastconformer
  export QUARTZNETSTT_ONNXRUNTIME=$device/ort/libonnxruntime.so.1.31.1
  local wav=$root/$sample status=0
  bench() { echo "== $*"; ./provider_bench "$@" 2>&1 || echo "(exit status $?)"; }

  bench --provider cpu --streams none models/hama-en.onnx "$wav" | tee hama-cpu.txt
  bench --provider cuda --streams 1,8,32,128 models/hama-en.onnx "$wav" | tee hama-cuda.txt
  bench --provider auto --streams none models/hama-en.onnx "$wav"
  bench --provider tensorrt --streams none models/hama-en.onnx "$wav"
  if ! grep -q '^words:' hama-cuda.txt; then
    echo "hama-en: CUDA did not run (above)"
    status=1
  elif [ "$(grep '^words:' hama-cpu.txt)" = "$(grep '^words:' hama-cuda.txt)" ]; then
    echo "hama-en: the same words on CUDA as on the CPU"
  else
    echo "hama-en: DIFFERENT words on CUDA"
    status=1
  fi
  bench --provider cpu --streams none fastconformer/model.onnx "$wav" | tee fc-cpu.txt
  bench --provider cuda --streams 1,8,32 fastconformer/model.onnx "$wav" | tee fc-cuda.txt
  if ! grep -q '^words:' fc-cuda.txt; then
    echo "fastconformer: CUDA did not run (above)"
    status=1
  elif [ "$(grep '^words:' fc-cpu.txt)" = "$(grep '^words:' fc-cuda.txt)" ]; then
    echo "fastconformer (random weights): the same pieces on CUDA as on the CPU"
  else
    echo "fastconformer (random weights): different pieces on CUDA (random weights make near-ties)"
  fi
  exit $status
}

case "${1:-}" in
  pack) cmd_pack ;;
  aside) cmd_aside ;;
  back) cmd_back ;;
  receive) cmd_receive "${2:?part 1 or 2}" ;;
  run) cmd_run ;;
  *) sed -n '2,31p' "$0"; exit 2 ;;
esac
