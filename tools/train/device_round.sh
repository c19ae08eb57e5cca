#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The training round's device side (tools/train/README.md section 2), run from the repository
# root by the device tool with carry [".devdata", ".whl", ".round"]:
#   bash tools/train/device_round.sh MINUTES
# Installs the carried wheels (soundfile/cffi/pycparser), then trains QuartzNet 5x5 from the
# shipped weights (.round/init.pt, made by `round.sh prepare`) and, if present, the optimiser's
# saved second moments (.round/optim_state.pt), with the continued-training schedule: 2 % warm-up
# to a peak LR of 0.01 (the first runs peaked at 0.015-0.02 from scratch), cosine down to a floor
# of 10 % of it (no decay to zero: the next round picks up from there), augmentation from the
# first step. MINUTES is the trainer's HARD budget (`round.sh minutes BUDGET_LEFT_S`).
# Environment: PYTHON (default python3), OUT (the device tool's), EXTRA_ARGS (more trainer flags),
# SKIP_PIP=1 (the smoke run: wheels already importable).
set -uo pipefail
MIN="${1:?usage: device_round.sh MINUTES}"
PY="${PYTHON:-python3}"
: "${OUT:?OUT must be set}"
if [ -z "${SKIP_PIP:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
BUNDLES=(.devdata)
[ -d .devdata_b ] && BUNDLES+=(.devdata_b)   # the second half of a two-call carry (round.sh prepare --split)
OPT=()
[ -f .round/optim_state.pt ] && OPT=(--optim-state .round/optim_state.pt)
CFG="${CONFIG:-tools/configs/quartznet_5x5.yaml}"
# shellcheck disable=SC2086
PYTHONUNBUFFERED=1 "$PY" tools/train/train_gpu.py --bundle "${BUNDLES[@]}" --config "$CFG" \
    --init .round/init.pt "${OPT[@]}" --lr 0.01 --warmup 0.02 --min-lr 0.1 --aug-start 0 \
    --batch-seconds 200 --eval-every-s 60 --minutes "$MIN" --out "$OUT" ${EXTRA_ARGS:-} 2>&1 | tee "$OUT/stdout.txt"
rc=${PIPESTATUS[0]}
ls -l "$OUT"
exit "$rc"
