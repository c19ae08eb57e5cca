#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The README's test command: installs what is missing (tools/setup.sh), then runs the
# formatting and lint gates over the whole workspace (engine, plugin, client), the whole
# cargo test suite (unit, NeMo parity, LM, element, pipelines, client), the engine's example,
# the application examples (examples/: Rust and Python) and the meson build with its tests,
# and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
# The model served by Triton Inference Server (README, Many streams, many machines): the
# Triton tests run against a real server; they are skipped, with this reason, only where the
# server cannot be installed or started on this machine.
if bash tools/triton/setup.sh; then
  export QUARTZNET_REQUIRE_TRITON=1
else
  echo "Triton tests: SKIPPED (tools/triton/setup.sh: reason above)"
fi
export CARGO_TERM_COLOR=never
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
words=$(mktemp)
plugin_dir=$(mktemp -d)
trap 'rm -rf "$log" "$words" "$plugin_dir"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# The engine on its own, as a Rust app would use it: its example transcribes a bundled sample.
cargo run --locked --quiet -p quartznet-engine --example transcribe -- samples/LJ001-0001.wav | tail -n 1

# The application examples (examples/README.md), on the bundled model: each must print word
# lines ("  1.380   1.700  0.93  hello") read from the element's bus messages.
check_words() { # NAME: the word lines in $words
  local n
  n=$(grep -Ec '^ *[0-9]+\.[0-9]{3} +[0-9]+\.[0-9]{3}  [01]\.[0-9]{2}  [^ ]' "$words" || true)
  if [ "$n" -eq 0 ]; then
    echo "$1 printed no word line:" >&2
    cat "$words" >&2
    exit 1
  fi
  echo "$1: $n words"
}
# Rust: the plugin registered statically, no GST_PLUGIN_PATH.
cargo run --locked --quiet --example bus_words -- samples/LJ001-0001.wav >"$words"
check_words examples/bus_words.rs
# Python (PyGObject): the plugin of this build, alone in its folder (GStreamer would try to
# load every library in target/debug/).
cargo build --locked --quiet -p gst-plugin-quartznetstt --lib
cp target/debug/libgstquartznetstt.so "$plugin_dir/"
GST_PLUGIN_PATH="$plugin_dir" /usr/bin/python3 examples/bus_words.py samples/LJ001-0001.wav >"$words"
check_words examples/bus_words.py

# The lexicon decoder against an independent reference (flashlight-text's LexiconDecoder, with
# KenLM) on the same log-probs, lexicon, LM and weights: our WER within 0.5 points. Real
# speech always; the synthetic held-out voices too where tools/data/make_dataset.sh made them.
reference_sets=(eval/real-dev)
[ -f data/heldout_manifest.json ] && reference_sets+=(data/heldout_manifest.json)
status=0
python3 tools/phoneme/compare_reference.py --debug "${reference_sets[@]}" || status=$?
case $status in
  0) ;;
  77) echo "compare_reference: skipped (reason above)" ;;
  *) echo "compare_reference: our lexicon decoder is worse than the reference" >&2; exit 1 ;;
esac

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
