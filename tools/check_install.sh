#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# meson test `installed`: what `meson install` puts in place works without the source tree.
#
#   sh tools/check_install.sh BUILDDIR SOURCEDIR
#
# Stages the install (`meson install --destdir`) in a temporary folder, then, with an empty
# home (no per-user models) and the staged plugin on GST_PLUGIN_PATH:
#  - the plugin transcribes a sample with no model-path: its default model must come from
#    the staged tree. That tree is not where meson was told to install, so this is the
#    lookup under the plugin file's own install prefix, as for an install that was moved;
#  - the staged quartznet-transcribe, given no --model, must not fall back to the source
#    tree (it looks where meson installs, which is empty here): it fails, listing the places.
# Exit 77 (meson's "skipped") when a model is really installed at the configured prefix:
# the staged copy then cannot be told apart.
set -eu
build=$1
src=$2
meson=${MESON:-meson}

stage=$(mktemp -d)
home=$(mktemp -d)
trap 'rm -rf "$stage" "$home"' EXIT
"$meson" install -C "$build" --destdir "$stage" --no-rebuild --quiet >/dev/null

plugin=$(find "$stage" -name libgstquartznetstt.so)
cli=$(find "$stage" -name quartznet-transcribe -type f)
model=$(find "$stage" -name hama-en.onnx)
for f in "$plugin" "$cli" "$model"; do
  [ -n "$f" ] || { echo "installed: missing from the install: plugin '$plugin', client '$cli', model '$model'" >&2; exit 1; }
done
for f in hama-en.json hama-en.lexicon.gz hama-g2p/encoder.onnx hama-g2p/decoder_step.onnx \
  hama-g2p/g2p_vocab.json quartznet-en.arpa.gz quartznet-en.onnx quartznet-en.json; do
  [ -f "$(dirname "$model")/$f" ] || { echo "installed: $f not installed beside $model" >&2; exit 1; }
done
prefix_model=${model#"$stage"}
if [ -f "$prefix_model" ]; then
  echo "installed: skipped: $prefix_model is really installed, so the staged copy cannot be told apart"
  exit 77
fi

# The runtime: the staged one (-Donnxruntime=) beside the plugin, else this user's, named
# explicitly because the home is hidden.
if ! ls "$(dirname "$plugin")"/quartznetstt/libonnxruntime.so* >/dev/null 2>&1; then
  user_runtime=${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/onnxruntime/libonnxruntime.so.1.32.0
  if [ -z "${QUARTZNETSTT_ONNXRUNTIME:-}" ] && [ -f "$user_runtime" ]; then
    export QUARTZNETSTT_ONNXRUNTIME="$user_runtime"
  fi
fi

unset QUARTZNETSTT_MODEL XDG_DATA_HOME
export HOME="$home"
export GST_PLUGIN_PATH="$(dirname "$plugin")"
export GST_REGISTRY="$stage/registry.bin"
export GST_DEBUG="quartznetstt:INFO" GST_DEBUG_NO_COLOR=1
cd "$stage"
gst-launch-1.0 -q filesrc location="$src/samples/LJ001-0001.wav" ! wavparse ! audioconvert ! \
  audioresample ! quartznetstt append-newline=true ! fdsink fd=1 >"$stage/out.txt" 2>"$stage/log.txt" || {
  cat "$stage/log.txt" >&2; echo "installed: the staged plugin failed" >&2; exit 1; }
chosen=$(grep -o 'default model [^ ]*' "$stage/log.txt" | head -n 1)
case $chosen in
  "default model $model") ;;
  *) cat "$stage/log.txt" >&2; echo "installed: expected default model $model, got '$chosen'" >&2; exit 1 ;;
esac
[ -s "$stage/out.txt" ] || { echo "installed: the staged plugin printed no transcript" >&2; exit 1; }
echo "installed: plugin with $chosen: $(tr '\n' ' ' <"$stage/out.txt")"

status=0
"$cli" "$src/samples/LJ001-0001.wav" >/dev/null 2>"$stage/cli.txt" || status=$?
if [ "$status" -ne 2 ] || grep -q "$src/models" "$stage/cli.txt" || ! grep -q searched "$stage/cli.txt"; then
  cat "$stage/cli.txt" >&2
  echo "installed: quartznet-transcribe without --model should fail (2) listing places outside the source tree, got $status" >&2
  exit 1
fi
echo "installed: client without --model: $(cat "$stage/cli.txt")"
