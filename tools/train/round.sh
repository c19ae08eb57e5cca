#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# A training round of the bundled model (tools/train/README.md, "A training round"):
#   tools/train/round.sh prepare [--split]        here: data, wheels, shipped weights -> carry (<= 64 MiB)
#   tools/train/round.sh minutes BUDGET_LEFT_S    the --minutes for the device call
#   (device call: bash tools/train/device_round.sh MINUTES, carry [".devdata", ".whl", ".round"])
#   tools/train/round.sh finish FILES_AT          here: .nemo, ONNX, evaluation, replace if better
#   tools/train/round.sh smoke                    all of it on CPU in a temp dir (~N minutes)
set -euo pipefail
exec python3 "$(cd "$(dirname "$0")" && pwd)/round.py" "$@"
