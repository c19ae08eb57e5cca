#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Comparison bench: on the same audio and model, in one run, one ONNX Runtime thread each:
#   1. the floor: one ONNX Runtime run over the whole file's normalised features (Python
#      onnxruntime, the same release as ours; session creation and a warm-up run excluded),
#   2. sherpa-onnx's offline recogniser (NeMo CTC, greedy): the decode call, and the whole process,
#   3./4. quartznet-transcribe --offline, greedy and default decoding (beam search + LM),
#   5./6. the element in a file pipeline (gst-launch-1.0), greedy and default decoding;
# each as median wall seconds of N rounds (every row once per round), its ratio to the floor, and peak RSS.
#
# Usage: bash benches/compare.sh [AUDIO.wav] [--runs N] [--model MODEL.onnx] [--no-build]
#                                [--no-sherpa]
#   AUDIO.wav   default: the clips of eval/real-dev joined (289 s), else samples/*.wav
#   --runs N    rounds, each timing every row once (default 3)
#   --model     NeMo QuartzNet ONNX with MODEL.json beside it (default models/quartznet-en.onnx)
#   --no-build  use target/release as it is (default: cargo build --release of plugin and CLI)
#   --no-sherpa skip sherpa-onnx (no PyPI needed beyond onnxruntime and numpy)
# Python packages go to a venv, ${XDG_CACHE_HOME:-~/.cache}/quartznetstt/bench-venv (or
# $QUARTZNETSTT_BENCH_VENV), created on first use: onnxruntime==1.32.0, numpy, onnx, sherpa-onnx
# from PyPI. Figures are timings: nothing here asserts on them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

die() { echo "compare.sh: $*" >&2; exit 1; }
usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }

audio="" runs=3 model="models/quartznet-en.onnx" build=1 sherpa=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || die "--runs needs a number"; runs=$2; shift 2 ;;
    --runs=*) runs=${1#--runs=}; shift ;;
    --model) [ $# -ge 2 ] || die "--model needs a path"; model=$2; shift 2 ;;
    --model=*) model=${1#--model=}; shift ;;
    --no-build) build=0; shift ;;
    --no-sherpa) sherpa=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$audio" ] || die "one audio file only (got $audio and $1)"; audio=$1; shift ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive whole number, not '$runs'"
[ -f "$model" ] || die "model $model not found"
model=$(realpath "$model")
[ -f "${model%.onnx}.json" ] || die "${model%.onnx}.json (the model's labels) not found beside $model"

# Tools and the ONNX Runtime library the CLI and the element load.
command -v python3 >/dev/null || die "python3 is needed"
gst_launch=$(command -v gst-launch-1.0) || die "gst-launch-1.0 not found (apt-get install gstreamer1.0-tools)"
command -v gst-inspect-1.0 >/dev/null || die "gst-inspect-1.0 not found (apt-get install gstreamer1.0-tools)"
ort_lib=${QUARTZNETSTT_ONNXRUNTIME:-${ORT_DYLIB_PATH:-}}
if [ -z "$ort_lib" ]; then
  for candidate in "${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/onnxruntime/libonnxruntime.so.1.32.0" \
                   "${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/onnxruntime/libonnxruntime.so" \
                   /usr/local/lib/quartznetstt/libonnxruntime.so.1.32.0 /usr/local/lib/quartznetstt/libonnxruntime.so; do
    if [ -f "$candidate" ]; then ort_lib=$candidate; break; fi
  done
fi
[ -n "$ort_lib" ] && [ -f "$ort_lib" ] ||
  die "ONNX Runtime library not found (run tools/setup.sh, or set QUARTZNETSTT_ONNXRUNTIME to libonnxruntime.so)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/quartznetstt-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Audio: the file given, or a join of the evaluation clips (sox, else Python's wave module).
if [ -n "$audio" ]; then
  [ -f "$audio" ] || die "audio $audio not found"
  audio=$(realpath "$audio")
  audio_label=$audio
else
  if [ -d "$repo/eval/real-dev" ] && compgen -G "$repo/eval/real-dev/*.wav" >/dev/null; then
    clips=("$repo"/eval/real-dev/*.wav)
    audio_label="eval/real-dev/*.wav joined (${#clips[@]} clips)"
  else
    clips=("$repo"/samples/*.wav)
    audio_label="samples/*.wav joined (${#clips[@]} clips)"
  fi
  audio="$tmp/joined.wav"
  if command -v sox >/dev/null; then
    sox "${clips[@]}" "$audio" || die "sox could not join ${clips[*]} (same rate and channels needed)"
  else
    python3 - "$audio" "${clips[@]}" <<'EOF' || die "could not join the clips (same rate, width and channels needed)"
import sys, wave
out, clips = sys.argv[1], sys.argv[2:]
with wave.open(clips[0]) as w:
    params = w.getparams()
with wave.open(out, "wb") as o:
    o.setparams(params)
    for clip in clips:
        with wave.open(clip) as w:
            p = w.getparams()
            if (p.nchannels, p.sampwidth, p.framerate) != (params.nchannels, params.sampwidth, params.framerate):
                sys.exit(f"{clip}: format differs from {clips[0]}")
            o.writeframes(w.readframes(w.getnframes()))
EOF
  fi
fi

# Build (the release plugin and CLI), unless told not to.
if [ "$build" = 1 ]; then
  command -v cargo >/dev/null || die "cargo not found (or pass --no-build with target/release built)"
  echo "compare.sh: cargo build --release -p gst-plugin-quartznetstt -p quartznet-transcribe" >&2
  cargo build --release -p gst-plugin-quartznetstt -p quartznet-transcribe >&2
fi
cli="$repo/target/release/quartznet-transcribe"
[ -x "$cli" ] || die "$cli missing (cargo build --release -p quartznet-transcribe)"
[ -f "$repo/target/release/libgstquartznetstt.so" ] ||
  die "target/release/libgstquartznetstt.so missing (cargo build --release -p gst-plugin-quartznetstt)"
export GST_PLUGIN_PATH="$repo/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
export QUARTZNETSTT_ONNXRUNTIME="$ort_lib"
# Registry scan outside the timed runs, and a check that the element loads at all.
gst-inspect-1.0 quartznetstt >/dev/null 2>"$tmp/inspect.err" ||
  die "the quartznetstt element does not load from target/release: $(tail -n 5 "$tmp/inspect.err")"

# The bench venv: onnxruntime (the floor), numpy, onnx and sherpa-onnx (sherpa's model copy).
venv=${QUARTZNETSTT_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/quartznetstt/bench-venv}
packages=("onnxruntime==1.32.0" numpy)
[ "$sherpa" = 1 ] && packages+=(onnx sherpa-onnx)
if [ ! -x "$venv/bin/python" ]; then
  echo "compare.sh: creating the bench venv $venv" >&2
  python3 -m venv "$venv" ||
    die "python3 -m venv $venv failed (Debian/Ubuntu: apt-get install python3-venv)"
fi
if ! "$venv/bin/python" - "${packages[@]}" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, _, pinned = spec.partition("==")
    found = version(name)
    if pinned and found != pinned:
        sys.exit(1)
EOF
then
  echo "compare.sh: pip install ${packages[*]} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2 ||
    die "pip install ${packages[*]} failed: PyPI (or the index pip is configured with) must be reachable; \
the packages go to $venv (set QUARTZNETSTT_BENCH_VENV to put them elsewhere; --no-sherpa needs only onnxruntime and numpy)"
fi

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD -- 2>/dev/null || commit="$commit+changes"
bench_args=(--audio "$audio" --audio-label "$audio_label" --model "$model"
  --model-label "${model#"$repo"/}" --runs "$runs" --cli "$cli" --gst-launch "$gst_launch"
  --tmp "$tmp" --repo "$repo" --commit "$commit")
[ "$sherpa" = 1 ] || bench_args+=(--no-sherpa)
"$venv/bin/python" "$repo/benches/compare.py" bench "${bench_args[@]}"
