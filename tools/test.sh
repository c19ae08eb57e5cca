#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's test command: installs what is missing (tools/setup.sh), then runs the
# formatting and lint gates, the whole cargo test suite (unit, NeMo parity, element,
# pipelines) and the meson build with its tests, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --no-fail-fast 2>&1 | tee "$log"

# The meson build must keep working too (it builds the release plugin and runs its tests).
builddir=$(mktemp -d)
meson setup "$builddir" >/dev/null
meson compile -C "$builddir"
# (the cargo suite itself already ran above, in the debug profile)
meson test -C "$builddir" --print-errorlogs element-loads quartznet-transcribe
rm -rf "$builddir"

passed=$(grep -o '[0-9]* passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
