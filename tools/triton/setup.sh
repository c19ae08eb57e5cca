#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The Triton Inference Server the tests run against (README, "Many streams, many machines"):
# PyPI's nvidia-pytriton, which bundles Triton Server 2.51, in a venv made by Debian's
# /usr/bin/python3 (a venv of another Python 3.11 build fails in Triton's Python-backend
# stub), then one start of tools/triton/serve.py on loopback to prove the server runs here.
# Exits non-zero, saying why, when it cannot: tools/test.sh then skips the Triton tests.
#
#   bash tools/triton/setup.sh            # venv at /opt/venvs/pytriton, or $QUARTZNET_PYTRITON_VENV
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${QUARTZNET_PYTRITON_VENV:-/opt/venvs/pytriton}
python=$venv/bin/python
# The project's ONNX Runtime release (tools/setup.sh), so the server runs the same kernels.
packages=(nvidia-pytriton==0.7.0 "onnxruntime==1.32.*" numpy)

if [ ! -x /usr/bin/python3 ]; then
  echo "triton setup: no /usr/bin/python3 (Debian's python3 package)" >&2
  exit 1
fi
if ! "$python" -c 'import pytriton, onnxruntime' 2>/dev/null; then
  echo "triton setup: making $venv (nvidia-pytriton 0.7.0, about 450 MB)"
  if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get install -y -qq python3-venv >/dev/null 2>&1 || {
      echo "triton setup: /usr/bin/python3 cannot make a venv and python3-venv did not install" >&2
      exit 1
    }
  fi
  /usr/bin/python3 -m venv "$venv"
  "$python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" || {
    echo "triton setup: pip could not install ${packages[*]}" >&2
    exit 1
  }
fi

# The authenticating TLS proxy the tests put in front (nginx): optional, its test says why it
# skips without it.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 ||
    echo "triton setup: nginx-light did not install: the TLS proxy test will be skipped"
fi

# One start: PyTriton unpacks Triton and loads the model through its Python backend.
log=$(mktemp)
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scratch=$(mktemp -d)
PYTRITON_HOME=$scratch setsid "$python" tools/triton/serve.py tests/fixtures/models/quartznet-tiny.onnx \
  --http-port "$port" >"$log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 120); do
  if grep -q '^READY' "$log"; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
kill -KILL -- "-$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$scratch"
if [ "$ready" != 1 ]; then
  echo "triton setup: Triton Server did not start on this machine; its log ends:" >&2
  tail -n 20 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
echo "triton setup: Triton Server starts here ($venv)"
