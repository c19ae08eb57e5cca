#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's main job: sets up what is missing, builds the plugin, and transcribes a bundled
# sample through a gst-launch-1.0 pipeline, printing the transcript.
#   bash tools/demo.sh [FILE.wav]      (QUARTZNETSTT_MODEL=model.onnx to choose the model)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh >&2
cargo build --release --locked --quiet
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

model="${QUARTZNETSTT_MODEL:-tests/fixtures/models/quartznet-tiny.onnx}"
sample="${1:-tests/fixtures/audio/LJ001-0001.wav}"
echo "transcribing $sample with $model" >&2
gst-launch-1.0 -q filesrc location="$sample" ! wavparse ! audioconvert ! audioresample ! \
  quartznetstt model-path="$model" append-newline=true ! fdsink fd=1
