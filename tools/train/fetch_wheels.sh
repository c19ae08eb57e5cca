#!/usr/bin/env bash
# Download the wheels train_gpu.py needs on the GPU machine (which has torch/numpy/pyyaml but
# no soundfile and no internet) into <repo>/.whl/, git-ignored via .git/info/exclude.
#   soundfile  - decodes the Ogg/Opus bundle; its manylinux wheel bundles libsndfile with Opus
#   cffi       - soundfile's FFI layer (compiled: needs the cp312 manylinux wheel)
#   pycparser  - cffi's dependency (pure Python)
# Pinned versions (override with SOUNDFILE_VER / CFFI_VER / PYCPARSER_VER); tested by installing
# them into a Python 3.12 with the device command line and decoding 16 kHz Ogg/Opus (see README).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SOUNDFILE_VER="${SOUNDFILE_VER:-0.13.1}"
CFFI_VER="${CFFI_VER:-2.0.0}"
PYCPARSER_VER="${PYCPARSER_VER:-2.23}"
PY="${PYTHON:-python3}"

grep -qxF '/.whl/' .gitignore 2>/dev/null || { [ -d .git ] && { grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude; }; } || true
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "soundfile==${SOUNDFILE_VER}" "cffi==${CFFI_VER}" "pycparser==${PYCPARSER_VER}"

# Exactly one wheel per package (two versions would break `pip install --no-index .whl/*.whl`).
for p in soundfile cffi pycparser; do
    n=$(ls .whl | grep -ci "^${p}-" || true)
    [ "$n" = 1 ] || { echo "expected one $p wheel in .whl, found $n" >&2; exit 1; }
done

# The soundfile wheel must bundle libsndfile (x86_64) - it is what decodes Ogg/Opus there.
sfw=$(ls .whl/soundfile-*.whl)
if ! unzip -l "$sfw" | grep -q '_soundfile_data/libsndfile.*x86_64.*\.so'; then
    echo "soundfile wheel $sfw does not bundle an x86_64 libsndfile" >&2; exit 1
fi
# Opus support: the bundled library references the opus decoder entry points.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
unzip -q -o "$sfw" '_soundfile_data/*' -d "$tmp"
lib=$(ls "$tmp"/_soundfile_data/libsndfile*x86_64*.so | head -1)
if grep -a -q 'opus_multistream_decode' "$lib" && grep -a -q -i 'libsndfile-1\.[2-9]' "$lib"; then
    echo "ok: $(basename "$lib") bundles the Opus decoder ($(grep -a -o 'libsndfile-1\.[0-9.]*' "$lib" | head -1))"
else
    echo "bundled $(basename "$lib") has no Opus decoder" >&2; exit 1
fi
ls -l .whl
