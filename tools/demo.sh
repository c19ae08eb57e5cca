#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's main job: sets up what is missing, builds the plugin, and transcribes the
# bundled samples (samples/transcripts.tsv says what they are) through a gst-launch-1.0
# pipeline with the default (bundled) model, printing each reference and transcript; then
# one sample with the bundled NeMo QuartzNet (models/quartznet-en.onnx), for comparison.
#   bash tools/demo.sh [FILE.wav]      (QUARTZNETSTT_MODEL=model.onnx to choose another model)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh >&2
cargo build --release --locked --quiet
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

transcribe() { # FILE [ELEMENT PROPERTY...]
  local file=$1
  shift
  gst-launch-1.0 -q filesrc location="$file" ! wavparse ! audioconvert ! audioresample ! \
    quartznetstt separator=newline "$@" ! fdsink fd=1
}

if [ $# -gt 0 ]; then
  transcribe "$1"
  exit
fi
while IFS=$'\t' read -r file reference about; do
  echo "== samples/$file ($about)"
  echo "reference:  $reference"
  echo "transcript: $(transcribe "samples/$file" | tr '\n' ' ')"
done < samples/transcripts.tsv
# The NeMo path: the QuartzNet 5x5 trained here (models/MODEL_CARD.md), on the real-speech sample.
echo "== QuartzNet 5x5 (models/quartznet-en.onnx), samples/LJ001-0001.wav"
echo "transcript: $(transcribe samples/LJ001-0001.wav model-path="$PWD/models/quartznet-en.onnx" | tr '\n' ' ')"
