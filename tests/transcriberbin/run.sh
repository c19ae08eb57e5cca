#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# quartznetstt as the transcriber of gst-plugins-rs's `transcriberbin`: the CEA-608 captions
# it produces must decode (cea608tott) to the words quartznetstt produces on its own. Then a
# sub-word model, the random-weight FastConformer fixture, through the same chain: its text is
# gibberish of SentencePiece pieces (byte-fallback control characters included) that CEA-608
# cannot all carry, so its captions are checked for structure only. Last, a cache-aware
# streaming model (the random-weight FastConformer CTC fixture of issue 26), the same way.
#
#   bash tests/transcriberbin/run.sh [PLUGIN_DIR]
#
# PLUGIN_DIR (or $QUARTZNETSTT_PLUGIN_DIR; default target/debug, relative to the repository
# root) holds libgstquartznetstt.so: build it first (`cargo build`). This directory is a
# cargo project of its own (gst-plugins-rs 0.13 is on gstreamer-rs 0.23, the workspace on
# 0.25): it builds the check program with the closed-caption and textwrap plugins linked in,
# into tests/transcriberbin/target. As root, installs the Debian packages it needs when
# missing (the closed-caption plugin's pango/cairo, and gst-plugins-bad's ccconverter,
# cccombiner and ccextractor).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

plugin_dir=${1:-${QUARTZNETSTT_PLUGIN_DIR:-target/debug}}
case $plugin_dir in /*) ;; *) plugin_dir=$root/$plugin_dir ;; esac
# A meson-built plugin never looks for the bundled model in the source tree (an installed one
# must not depend on it), so name it: the bundled default (hama's phoneme model with its
# lexicon); QUARTZNETSTT_MODEL=models/quartznet-en.onnx checks NeMo's QuartzNet the same way.
export QUARTZNETSTT_MODEL=${QUARTZNETSTT_MODEL:-$root/models/hama-en.onnx}
if [ ! -f "$plugin_dir/libgstquartznetstt.so" ]; then
  echo "transcriberbin: no libgstquartznetstt.so in $plugin_dir (run cargo build first)" >&2
  exit 1
fi

apt_packages=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libpango1.0-dev
  libcairo2-dev pkg-config gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "transcriberbin: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "transcriberbin: please install: ${missing[*]} (sudo apt-get install ...)" >&2
    exit 1
  fi
fi

# Debug: the program only wires elements together, and a debug build of its dependencies
# is quicker than a release one.
CARGO_TARGET_DIR=$here/target cargo build --locked --quiet --manifest-path "$here/Cargo.toml"

# A latency other than transcriberbin's and quartznetstt's default (4 s both), so that the
# check also shows transcriberbin's latency reaching the element. The check has its own
# timeouts (120 s per pipeline); this one is the backstop.
GST_PLUGIN_PATH="$plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  timeout --kill-after=10 400 "$here/target/debug/transcriberbin-check" --latency 3000 --language-code en \
  "$root/samples/LJ001-0001.wav"

# The sub-word model on a short clip (2.8 s; the chain runs in real time).
GST_PLUGIN_PATH="$plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  timeout --kill-after=10 200 "$here/target/debug/transcriberbin-check" --latency 3000 \
  --language-code en --check structure \
  --set "model-path=$root/tests/fixtures/subword-models/fastconformer/model.onnx" \
  "$root/tests/fixtures/audio/espeak_fox.wav"

# A cache-aware streaming model (its description's `streaming` section: stepped chunk by chunk
# with caches), the random-weight FastConformer CTC fixture, at the look-ahead the latency
# picks (1040 ms in 3 s); gibberish text as above, so structure only.
GST_PLUGIN_PATH="$plugin_dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  timeout --kill-after=10 200 "$here/target/debug/transcriberbin-check" --latency 3000 \
  --language-code en --check structure \
  --set "model-path=$root/tests/fixtures/cache-aware/ctc/model.onnx" \
  "$root/tests/fixtures/audio/espeak_fox.wav"
