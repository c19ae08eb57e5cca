#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# One entry point for the synthetic English training set (see README.md in this folder):
#   tools/data/make_dataset.sh [OUT_DIR [HOURS]]        default data/ in the repository, 8 hours
# Installs the Debian packages (text sources, TTS engines, sox, opus-tools) and a Python venv
# with hibari-tts/num2words/soundfile, extracts + normalises the sentences, renders and augments.
# Fixed seeds throughout: the same package versions give the same data.
# Pack for the GPU machine afterwards with tools/data/pack.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$(cd "$HERE/../.." && pwd)/data}"
HOURS="${2:-8}"
VENV="${TTS_VENV:-/opt/venvs/tts}"
JOBS="${JOBS:-$(nproc)}"

APT_PKGS=(espeak-ng flite sox opus-tools festival festvox-kallpc16k festvox-kdlpc16k
          fortunes fortunes-min dict-devil dict-gcide bible-kjv bible-kjv-text)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# hibari-tts: small neural TTS (onnxruntime, ~130x realtime on one core); its "heart" voice ships
# in the wheel, the other voices would be downloaded at run time, which is not possible here.
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r "$HERE/requirements.txt"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
"$VENV/bin/python" "$HERE/texts.py" "$OUT/sentences.jsonl"
"$VENV/bin/python" "$HERE/generate.py" --sentences "$OUT/sentences.jsonl" --out "$OUT" \
    --hours "$HOURS" --jobs "$JOBS" 2>&1 | tee "$OUT/generate.log"
echo "done: $OUT/{train,dev,heldout,heldout_aug}_manifest.json, report in $OUT/report.txt"
