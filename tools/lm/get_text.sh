#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Fetches the extra English text for the language model (tools/lm/README.md, "Text") into a
# cache outside the repository, then normalises it with lm_text.py to one sentence per line
# in the model's alphabet (a-z, apostrophe, space).
#
#   bash tools/lm/get_text.sh [CACHE]     # default ~/.cache/quartznetstt/lm-text
#
# Sources: Debian packages (downloaded with apt-get download, unpacked with dpkg-deb -x,
# nothing installed) and the PyPI wheel of wordfreq (pip download, not installed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-$HOME/.cache/quartznetstt/lm-text}
mkdir -p "$cache/debs" "$cache/root" "$cache/pypi" "$cache/text"

debs=(dict-gcide dict-jargon fortune-anarchism sword-text-web)
(cd "$cache/debs" && for p in "${debs[@]}"; do
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p"
done)
for d in "$cache"/debs/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
ls "$cache"/pypi/wordfreq-3.1.1-*.whl >/dev/null 2>&1 ||
    pip download --no-deps -q -d "$cache/pypi" wordfreq==3.1.1
python3 "$here/lm_text.py" --root "$cache/root" --pypi "$cache/pypi" --out "$cache/text"
