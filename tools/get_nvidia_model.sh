#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Downloads one of NVIDIA's published NeMo CTC checkpoints and exports it for quartznetstt
# (ONNX + description), then prints how to use it.
#
#   tools/get_nvidia_model.sh [-o DIR] NAME [-- EXPORT_OPTIONS...]
#   tools/get_nvidia_model.sh [-o DIR] --nemo FILE.nemo|file:///FILE.nemo [NAME] [-- EXPORT_OPTIONS...]
#   tools/get_nvidia_model.sh --list
#
# NAME is one of tools/nvidia_models.tsv (`--list` prints them with their kind), the names and
# download locations NeMo's own list_available_models() gives (tools/list_nvidia_models.py):
# character CTC (stt_en_quartznet15x5, QuartzNet15x5Base-En, stt_en_jasper10x5dr, ...),
# SentencePiece CTC (stt_en_citrinet_256/512/1024, stt_en_conformer_ctc_small/medium/large,
# stt_en_fastconformer_ctc_large, parakeet-ctc-0.6b/1.1b and other languages) and hybrid
# RNN-T/CTC models (stt_en_fastconformer_hybrid_large_pc: exported with their CTC head). What
# cannot be exported is refused by export_nemo.py, which says why; SentencePiece models
# (hybrids included) export and decode greedily (decoder=greedy; the beam search over pieces is
# not done yet, issue 24).
#
# Download: from the table's address (NGC, as NeMo downloads; Hugging Face for Parakeet), else
# from Hugging Face (huggingface.co/nvidia/NAME/resolve/main/NAME.nemo), with curl, resumable
# (run it again after an interruption), into ${XDG_CACHE_HOME:-~/.cache}/quartznetstt/nemo/NAME.nemo;
# an existing complete file is reused. No checksum is checked (none is published beside the
# files). --nemo skips the download.
# Export: tools/export_nemo.py in the NeMo venv ($NEMO_PYTHON, default
# /opt/venvs/nemo3/bin/python, made by `tools/setup_nemo.sh nemo3`), writing DIR/NAME.onnx and
# DIR/NAME.json; DIR defaults to ${XDG_DATA_HOME:-~/.local/share}/quartznetstt/models.
# EXPORT_OPTIONS go to export_nemo.py (e.g. --int8, --language-model, --pad-mode zeros for a
# checkpoint trained with NeMo >= 2.5; every published one predates it, hence its default).
#
# Needs internet access (not CI's) and NeMo (not installed in CI): nothing in the test suite
# runs the download. The export half was run locally on a checkpoint trained here
# (tools/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NEMO_PYTHON=${NEMO_PYTHON:-/opt/venvs/nemo3/bin/python}
TABLE=$here/nvidia_models.tsv

# The download address of NAME (fails for a name the table lacks).
model_url() {
  awk -F '\t' -v name="$1" '$1 == name { print $3; found = 1 } END { exit !found }' "$TABLE"
}

usage() {
  sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

refuse() {
  echo "get_nvidia_model: $1 is not a CTC checkpoint NVIDIA publishes (--list names them)." >&2
  echo "  A checkpoint you have: --nemo FILE.nemo (export_nemo.py refuses what the element cannot run)." >&2
  exit 2
}

# Downloads $1 into the partial file $2 (resuming what it holds), then names it $3; fails
# when the server says no.
fetch() {
  echo "get_nvidia_model: downloading $1"
  curl --fail --location --retry 3 --progress-bar --continue-at - --output "$2" "$1" && mv "$2" "$3"
}

out=${XDG_DATA_HOME:-$HOME/.local/share}/quartznetstt/models
nemo=
name=
while [ $# -gt 0 ]; do
  case $1 in
    -o | --output) out=${2:?-o needs a folder}; shift 2 ;;
    --nemo) nemo=${2:?--nemo needs a file}; shift 2 ;;
    --list) awk -F '\t' '!/^#/ { print $1 "\t" $2 }' "$TABLE"; exit 0 ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) echo "get_nvidia_model: unknown option $1" >&2; usage ;;
    *) [ -z "$name" ] || usage; name=$1; shift ;;
  esac
done
nemo=${nemo#file://}

if [ -n "$nemo" ]; then
  [ -f "$nemo" ] || { echo "get_nvidia_model: $nemo is not a file" >&2; exit 2; }
  name=${name:-$(basename "$nemo" .nemo)}
else
  [ -n "$name" ] || usage
  url=$(model_url "$name") || refuse "$name"
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/quartznetstt/nemo
  mkdir -p "$cache"
  nemo=$cache/$name.nemo
  # One partial file per source: a resumed download continues the same file.
  if [ ! -f "$nemo" ] && ! fetch "$url" "$nemo.part" "$nemo" &&
    ! fetch "https://huggingface.co/nvidia/$name/resolve/main/$name.nemo" "$nemo.hf.part" "$nemo"; then
    echo "get_nvidia_model: cannot download $name (no internet access?); run again to resume, or pass --nemo FILE" >&2
    exit 1
  fi
fi

[ -x "$NEMO_PYTHON" ] || {
  echo "get_nvidia_model: no NeMo python at $NEMO_PYTHON: run tools/setup_nemo.sh nemo3, or set NEMO_PYTHON" >&2
  exit 1
}
# The transcripts' language, from NVIDIA's naming (stt_<language>_...); English otherwise.
language=en
case $name in stt_??_*) language=${name:4:2} ;; esac
mkdir -p "$out"
model=$out/$name.onnx
"$NEMO_PYTHON" "$here/export_nemo.py" "$nemo" -o "$model" --language "$language" "$@"

cat <<EOF

Model ready: $model (description: ${model%.onnx}.json)
  gst-launch-1.0 filesrc location=speech.wav ! wavparse ! audioconvert ! audioresample ! quartznetstt model-path="$model" separator=newline ! fdsink fd=1
  quartznet-transcribe --model "$model" speech.wav
Or make it the default of both: export QUARTZNETSTT_MODEL="$model"
EOF
