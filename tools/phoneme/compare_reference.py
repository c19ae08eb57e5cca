# SPDX-License-Identifier: MPL-2.0
"""Our lexicon beam search against an independent reference on the same log-probs.

    python3 tools/phoneme/compare_reference.py [--beam 50] [--tolerance 0.5] SET...

For each SET (a folder with `manifest.tsv`, such as eval/real-dev, or a NeMo JSON manifest
such as data/heldout_manifest.json made by tools/data/make_dataset.sh) it:
1. writes the bundled phoneme model's log-probs of every clip (hama-en.onnx through ONNX
   Runtime, tools/phoneme/flashlight_reference.py mode 1, in its venv);
2. decodes them with flashlight-text's LexiconDecoder (KenLM inside, reading the ARPA LM) and
   with our beam search (engine example `lexicon_eval`), with the same lexicon
   (models/hama-en.lexicon.gz), LM (models/quartznet-en.arpa.gz) and weights (LM weight 1.0
   on log10 = 0.434 on natural-log scores, word score 1.0), our beam no wider than theirs;
3. prints both WERs and decode times per audio second, and fails (exit 1) when ours is more
   than TOLERANCE points worse on any set.

Exit 77 (skip), with the reason printed, only when the flashlight venv cannot be made (no
network to PyPI, no python3-venv). Standard library only; builds the example itself.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools", "phoneme")
MODELS = os.path.join(ROOT, "models")
SKIP = 77


def as_folder(path, scratch):
    """A folder with manifest.tsv for `path` (a NeMo JSON manifest is linked into one)."""
    if os.path.isdir(path):
        return path
    folder = tempfile.mkdtemp(dir=scratch)
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as src, \
            open(os.path.join(folder, "manifest.tsv"), "w", encoding="utf-8") as dst:
        for line in src:
            if not line.strip():
                continue
            entry = json.loads(line)
            audio = entry["audio_filepath"]
            audio = audio if os.path.isabs(audio) else os.path.join(base, audio)
            name = os.path.basename(audio)
            os.symlink(audio, os.path.join(folder, name))
            dst.write(f"{name}\t{entry['text']}\n")
    return folder


def run(args, what):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"{what} failed ({done.returncode})")
    return done.stdout + done.stderr


def number(pattern, text, what):
    found = re.search(pattern, text)
    if not found:
        sys.exit(f"no {what} in:\n{text}")
    return float(found.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--beam", type=int, default=50, help="both decoders' beam (ours: width)")
    ap.add_argument("--tolerance", type=float, default=0.5, help="WER points ours may be worse")
    ap.add_argument("--debug", action="store_true",
                    help="build our decoder in the debug profile (what the tests already built: "
                         "quicker to build, its decode times are not figures)")
    args = ap.parse_args()

    reference = os.path.join(TOOLS, "flashlight_reference.py")
    # Mode 1 makes the venv (flashlight-text + onnxruntime); a failure there is the only skip.
    probe = subprocess.run([sys.executable, reference, "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"compare_reference: skipped: the reference tool cannot run: {probe.stderr.strip()}")
        sys.exit(SKIP)

    profile = [] if args.debug else ["--release"]
    run(["cargo", "build", *profile, "--quiet", "-p", "quartznet-engine", "--example", "lexicon_eval"],
        "building the lexicon_eval example")
    ours_binary = os.path.join(ROOT, "target", "debug" if args.debug else "release", "examples",
                               "lexicon_eval")
    lexicon = os.path.join(MODELS, "hama-en.lexicon.gz")
    vocab = os.path.join(MODELS, "hama-g2p", "g2p_vocab.json")
    lm = os.path.join(MODELS, "quartznet-en.arpa.gz")

    failed = False
    with tempfile.TemporaryDirectory(prefix="compare-reference-") as scratch:
        for path in args.sets:
            name = os.path.basename(os.path.normpath(path))
            folder = as_folder(path, scratch)
            logprobs = tempfile.mkdtemp(dir=scratch)
            made = subprocess.run([sys.executable, reference, "--make-logprobs", logprobs,
                                   "--audio-set", folder], capture_output=True, text=True)
            if made.returncode != 0:
                text = made.stdout + made.stderr
                if "venv" in text or "pip" in text:
                    print(f"compare_reference: skipped: the flashlight venv cannot be made:\n{text}")
                    sys.exit(SKIP)
                sys.stderr.write(text)
                sys.exit("making log-probs failed")
            theirs = run([sys.executable, reference, logprobs, "--lm", lm, "--lexicon", lexicon,
                          "--vocab", vocab, "--beam", str(args.beam)], "flashlight")
            ours = run([ours_binary, logprobs, lexicon, vocab, "--lm", lm, "--width", str(args.beam)],
                       "our lexicon search")
            their_wer = number(r"WER ([0-9.]+) %", theirs, "flashlight WER")
            our_wer = number(r"WER ([0-9.]+) %", ours, "our WER")
            their_speed = 1000 * number(r"= ([0-9.]+) s/s", theirs, "flashlight speed")
            our_speed = number(r"= ([0-9.]+) ms/s", ours, "our speed")
            verdict = "ok" if our_wer <= their_wer + args.tolerance else "WORSE"
            failed |= verdict != "ok"
            print(f"{name}: WER ours {our_wer:.2f} % (width {args.beam}), flashlight {their_wer:.2f} % "
                  f"(beam {args.beam}); decode ours {our_speed:.2f} ms, flashlight {their_speed:.2f} ms "
                  f"per audio second{' (debug build)' if args.debug else ''}: {verdict}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
