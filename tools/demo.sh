#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's main job: sets up what is missing, builds the plugin, and transcribes the
# bundled samples (samples/transcripts.tsv says what they are) through a gst-launch-1.0
# pipeline with the default (bundled) model, printing each reference and transcript.
#   bash tools/demo.sh [FILE.wav]      (QUARTZNETSTT_MODEL=model.onnx to choose another model)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh >&2
cargo build --release --locked --quiet
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

transcribe() {
  gst-launch-1.0 -q filesrc location="$1" ! wavparse ! audioconvert ! audioresample ! \
    quartznetstt separator=newline ! fdsink fd=1
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
