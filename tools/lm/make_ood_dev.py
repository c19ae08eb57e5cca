# SPDX-License-Identifier: MPL-2.0
"""Builds a small out-of-domain TUNING set from the new book prose (tools/lm/get_text.sh):
sentences held out of the LM's text (pass OUT/splits.json to build_lm.py --exclude), read by a
training voice (espeak-ng en-us, resampled to 16 kHz mono with sox).

    python3 tools/lm/make_ood_dev.py --text CACHE/text --out OUT [--from austen:40 moby_dick:40 sotu:20]

Writes OUT/wav/*.wav, OUT/manifest.json (NeMo lines) and OUT/splits.json ({"ood_dev": [...]}).
Sentences of 6-20 words, drawn with a fixed seed from the named files of CACHE/text (default:
austen, moby_dick and sotu). `--from harvard:100` makes a set whose text is in no LM's sources
(the Harvard sentences; their splits.json need not be excluded from anything).
"""
import argparse
import json
import os
import random
import subprocess


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--from", dest="sources", nargs="+", default=["austen:40", "moby_dick:40", "sotu:20"],
                    metavar="NAME:N", help="draw N sentences from CACHE/text/NAME.txt")
    args = ap.parse_args()
    rng = random.Random(14)
    chosen = []
    for source in args.sources:
        name, n = source.rsplit(":", 1)
        n = int(n)
        with open(os.path.join(args.text, name + ".txt"), encoding="utf-8") as f:
            lines = sorted({l.strip() for l in f if 6 <= len(l.split()) <= 20})
        chosen += rng.sample(lines, n)
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as m:
        for i, text in enumerate(chosen):
            raw = os.path.join(args.out, "wav", f"ood_{i:03d}.raw.wav")
            wav = os.path.join(args.out, "wav", f"ood_{i:03d}.wav")
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", raw, text], check=True)
            subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
            os.remove(raw)
            m.write(json.dumps({"audio_filepath": os.path.abspath(wav), "text": text}) + "\n")
    with open(os.path.join(args.out, "splits.json"), "w") as f:
        json.dump({"ood_dev": chosen}, f, indent=0)
    print(f"make_ood_dev: {len(chosen)} utterances in {args.out}")


if __name__ == "__main__":
    main()
