#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's test command: installs what is missing (tools/setup.sh), then runs the
# formatting and lint gates over the whole workspace (engine, plugin, client), the whole
# cargo test suite (unit, NeMo parity, LM, element, pipelines, client), the engine's example
# and the meson build with its tests, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# The engine on its own, as a Rust app would use it: its example transcribes a bundled sample.
cargo run --locked --quiet -p quartznet-engine --example transcribe -- samples/LJ001-0001.wav | tail -n 1

# The meson build must keep working too (it builds the release plugin and runs its tests).
builddir=$(mktemp -d)
meson setup "$builddir" >/dev/null
meson compile -C "$builddir"
# (the cargo suite itself already ran above, in the debug profile)
meson test -C "$builddir" --print-errorlogs element-loads quartznet-transcribe installed
# The caption chain: quartznetstt as gst-plugins-rs's transcriberbin's transcriber (its own
# cargo project, on gstreamer-rs 0.23), with the release plugin meson just built.
cargo fmt --check --manifest-path tests/transcriberbin/Cargo.toml
bash tests/transcriberbin/run.sh "$builddir/cargo-target/release"
rm -rf "$builddir"

passed=$(grep -o '[0-9]* passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
