#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's test command: installs what is missing (tools/setup.sh), then runs the
# formatting and lint gates and the whole test suite (unit, NeMo parity, element, pipelines).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-fail-fast
