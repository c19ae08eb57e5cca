#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Transport bundle for the GPU machine (at most ~55 MiB): Ogg Opus 16 kb/s in <repo>/.devdata/,
# then a check that PyPI's soundfile (libsndfile with Opus inside the wheel) decodes it.
#   tools/data/pack.sh [DATA_DIR [MAX_MIB]]            default data/ in the repository, 55
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DATA="${1:-$REPO/data}"
MAX_MIB="${2:-55}"
command -v opusenc >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opus-tools; }
# .devdata/ must never be committed: keep it in the clone-local exclude list
# (.gitignore lists it; in a clone whose .gitignore lacks it, the clone-local exclude list; a git
# worktree has a .git FILE, so no info/exclude of its own: .gitignore covers it there)
grep -qxF '/.devdata/' "$REPO/.gitignore" 2>/dev/null || { [ -d "$REPO/.git" ] && { grep -qxF '/.devdata/' "$REPO/.git/info/exclude" 2>/dev/null || echo '/.devdata/' >> "$REPO/.git/info/exclude"; }; } || true
# PACK_ARGS: more pack.py encode flags (e.g. --max-eval 20 for a smoke bundle)
# shellcheck disable=SC2086
python3 "$HERE/pack.py" encode --data "$DATA" --dest "$REPO/.devdata" --max-mib "$MAX_MIB" ${PACK_ARGS:-}
# scratch venv with only soundfile + numpy: the same wheel the GPU side installs
SCRATCH="${SF_VENV:-/tmp/venv-soundfile-check}"
[ -x "$SCRATCH/bin/python" ] || python3 -m venv "$SCRATCH"
"$SCRATCH/bin/pip" install -q soundfile numpy
"$SCRATCH/bin/python" "$HERE/pack.py" verify --data "$DATA" --dest "$REPO/.devdata"
du -sh "$REPO/.devdata"
