# SPDX-License-Identifier: MPL-2.0
"""Word and character error rates of a model through quartznet-transcribe (the element).

    python3 tools/evaluate.py [--model models/quartznet-en.onnx] [--decoder greedy] SET...

A SET is a NeMo manifest (JSON lines with audio_filepath and text) or a folder holding a
`manifest.tsv` (file, reference, ...) such as eval/real-dev. Each set is measured
offline (whole utterance, NeMo's transcribe(): the engine's `--offline`) and through the element
as live input (`--latency-ms 4000`, its default live windows; `--modes` also takes `file`: the
element's windows for input that is not live, the client's default), with the default
decoder (beam search with the model's language model, if it has one) unless told otherwise. Standard library
only; builds nothing: run `cargo build --release` first (tools/demo.sh does).

`--join SECONDS` joins each set's clips, in order, into files of at least that length (the
references likewise) and scores those, so that window boundaries fall inside speech.

With `--nemo-frame-batch` (the engine's streaming, NeMo parity) it also reports how long after a
word ends its text comes out: the median and 95th percentile of (audio pushed when the word's
chunk was recognised - the word's end), in seconds.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The one edit distance of the Python tools; tools/train/common.py needs only the standard library.
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from common import edit_distance  # noqa: E402


def load_set(path):
    """[(wav path, reference text)] from a NeMo manifest or a folder with manifest.tsv."""
    items = []
    if os.path.isdir(path):
        with open(os.path.join(path, "manifest.tsv"), encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 2 and fields[0].endswith(".wav"):
                    items.append((os.path.join(path, fields[0]), fields[1]))
    else:
        base = os.path.dirname(os.path.abspath(path))
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    audio = entry["audio_filepath"]
                    items.append((audio if os.path.isabs(audio) else os.path.join(base, audio), entry["text"]))
    return items


def normalise(text):
    """Lower-case words of a-z and apostrophes, as the references are written."""
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


MODE_ARGS = {"offline": ["--offline"], "streaming": ["--latency-ms", "4000"], "file": []}
# Options that make the element treat a file as live input (streaming needs no latency then).
LIVE_OPTIONS = ("--latency-ms", "--left-context-ms", "--chunk-ms", "--right-context-ms")


def join_items(items, seconds, folder):
    """`items` joined, in order, into WAV files of at least `seconds` in `folder`."""
    joined, group, length = [], [], 0.0
    for i, (path, ref) in enumerate(items):
        group.append((path, ref))
        with wave.open(path) as w:
            length += w.getnframes() / w.getframerate()
        if length >= seconds or i == len(items) - 1:
            out = os.path.join(folder, f"joined-{len(joined):03d}.wav")
            with wave.open(out, "wb") as dst:
                for j, (clip, _) in enumerate(group):
                    with wave.open(clip) as src:
                        if j == 0:
                            dst.setparams(src.getparams())
                        elif src.getparams()[:3] != dst.getparams()[:3]:
                            sys.exit(f"{clip}: channels, width or rate differ from {group[0][0]}; cannot join")
                        dst.writeframes(src.readframes(src.getnframes()))
            joined.append((out, " ".join(r for _, r in group)))
            group, length = [], 0.0
    return joined


def transcribe(binary, model, files, mode, extra=()):
    """The transcripts of `files`, and the delay from each word's end until it was output."""
    mode_args = MODE_ARGS[mode]
    if mode == "streaming" and any(option in extra for option in LIVE_OPTIONS):
        mode_args = []
    args = [binary, "--json", "--quiet"] + (["--model", model] if model else []) + mode_args
    args += list(extra)
    out = subprocess.run(args + files, check=True, capture_output=True, text=True).stdout
    texts = {}
    delays = []
    for line in out.splitlines():
        entry = json.loads(line)
        texts[entry["file"]] = entry["text"]
        delays += [w["emitted"] - w["end"] for w in entry["words"] if "emitted" in w]
    return [texts[f] for f in files], delays


def percentile(values, fraction):
    """The value below which `fraction` of `values` lie (nearest rank); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def error_counts(items, hyps):
    """(word errors, reference words, character errors, reference characters)."""
    word_errors = words = char_errors = chars = 0
    for (_, ref), hyp in zip(items, hyps):
        r, h = normalise(ref), normalise(hyp)
        word_errors += edit_distance(r, h)
        words += len(r)
        char_errors += edit_distance(" ".join(r), " ".join(h))
        chars += len(" ".join(r))
    return word_errors, words, char_errors, chars


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--model", help="ONNX model (default: the bundled one)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "quartznet-transcribe"))
    ap.add_argument("--show", type=int, default=0, help="print this many reference/hypothesis pairs per set")
    ap.add_argument("--modes", default="offline,streaming",
                    help="comma-separated: offline, streaming (the live windows), file (windows for files); default offline,streaming")
    ap.add_argument("--join", type=float, metavar="SECONDS",
                    help="join each set's clips into files of at least this many seconds and score those")
    passed = ("decoder", "lm", "beam-width", "lm-weight", "word-bonus", "unk-penalty", "latency-ms", "left-context-ms", "chunk-ms",
              "right-context-ms", "word-gap-ms")
    for option in passed:
        ap.add_argument(f"--{option}", help=f"passed to quartznet-transcribe --{option}")
    ap.add_argument("--nemo-frame-batch", action="store_true", help="passed to quartznet-transcribe")
    args = ap.parse_args()
    extra = ["--nemo-frame-batch"] if args.nemo_frame_batch else []
    for option in passed:
        value = getattr(args, option.replace("-", "_"))
        if value is not None:
            extra += [f"--{option}", value]

    print(f"{'set':<28} {'mode':<10} {'utts':>5} {'words':>6} {'WER %':>7} {'CER %':>7} "
          f"{'delay med s':>11} {'p95 s':>6}")
    scratch = tempfile.TemporaryDirectory(prefix="evaluate-")
    for path in args.sets:
        items = load_set(path)
        name = os.path.basename(os.path.normpath(path))
        if args.join:
            folder = tempfile.mkdtemp(dir=scratch.name)
            items = join_items(items, args.join, folder)
            name = f"{name} joined"
        files = [f for f, _ in items]
        for mode in args.modes.split(","):
            if mode not in MODE_ARGS:
                sys.exit(f"unknown mode {mode!r}: choose from {', '.join(MODE_ARGS)}")
            hyps, delays = transcribe(args.binary, args.model, files, mode, extra)
            word_errors, words, char_errors, chars = error_counts(items, hyps)
            median, p95 = percentile(delays, 0.5), percentile(delays, 0.95)
            timing = f"{median:>11.2f} {p95:>6.2f}" if delays else f"{'-':>11} {'-':>6}"
            print(f"{name:<28} {mode:<10} {len(items):>5} {words:>6} {100 * word_errors / words:>7.1f} "
                  f"{100 * char_errors / chars:>7.1f} {timing}")
            for (_, ref), hyp in list(zip(items, hyps))[: args.show]:
                print(f"    REF {ref}\n    HYP {hyp}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
