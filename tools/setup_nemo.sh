#!/bin/sh
# Create the Python environments used by tools/*.py.
#   tools/setup_nemo.sh nemo3  [DIR]   -> DIR (default /opt/venvs/nemo3)  from requirements-nemo3.txt
#   tools/setup_nemo.sh nemo24 [DIR]   -> DIR (default /opt/venvs/nemo24) from requirements-nemo24.txt
#   tools/setup_nemo.sh all            -> both, default locations
# Needs python3.11 (3.10-3.12 work for both NeMo releases) and access to PyPI. Several GB each
# (PyPI's torch wheel brings the CUDA libraries even though the tools only need the CPU).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}

make_env() {
    name=$1
    dir=$2
    req="$here/requirements-$name.txt"
    [ -f "$req" ] || { echo "unknown environment '$name' (no $req)" >&2; exit 2; }
    echo "==> $dir from $req"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install --upgrade pip
    # One resolver run with every pin, so pip cannot pick a different torch for NeMo.
    "$dir/bin/pip" install -r "$req"
    "$dir/bin/python" -c "import nemo, torch; from nemo.collections.asr.models import EncDecCTCModel; print('nemo', nemo.__version__, 'torch', torch.__version__)"
}

case "${1:-all}" in
    nemo3) make_env nemo3 "${2:-/opt/venvs/nemo3}" ;;
    nemo24) make_env nemo24 "${2:-/opt/venvs/nemo24}" ;;
    all)
        make_env nemo3 /opt/venvs/nemo3
        make_env nemo24 /opt/venvs/nemo24
        ;;
    *) echo "usage: $0 {nemo3|nemo24|all} [DIR]" >&2; exit 2 ;;
esac
