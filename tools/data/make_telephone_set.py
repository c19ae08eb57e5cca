# SPDX-License-Identifier: MPL-2.0
"""A telephone-band copy of an evaluation set: every clip through 8 kHz and back.

    python3 tools/data/make_telephone_set.py [--source data/heldout_manifest.json] \
        [--out data/heldout_8k] [--codec ulaw]

Each clip goes 16 kHz -> 8 kHz coded (`--codec`: ulaw = 8-bit G.711 mu-law, the default; the
other codecs of tools/telephone_parity.py also work) -> 16 kHz 16-bit mono, with
tools/telephone_parity.py's own repeatable sox chain. Writes the clips to OUT and a NeMo
manifest `OUT_manifest.json` beside OUT (the same texts, one line per clip). Clips already
made are kept. Used for the default model's 8 kHz figures (models/MODEL_CARD.md).
"""
import argparse
import json
import os
import sys
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import telephone_parity as tp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=os.path.join(ROOT, "data", "heldout_manifest.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "heldout_8k"))
    ap.add_argument("--codec", default="ulaw")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    base = os.path.dirname(os.path.abspath(args.source))
    clips, seconds = 0, 0.0
    with open(args.source, encoding="utf-8") as src, \
            open(out + "_manifest.json", "w", encoding="utf-8") as manifest:
        for line in src:
            if not line.strip():
                continue
            entry = json.loads(line)
            audio = entry["audio_filepath"]
            audio = audio if os.path.isabs(audio) else os.path.join(base, audio)
            dst = os.path.join(out, os.path.basename(audio))
            if not os.path.exists(dst):
                tp.make_clip(audio, dst, args.codec)
            with wave.open(dst) as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
                    sys.exit(f"{dst}: not 16 kHz mono 16-bit")
                duration = w.getnframes() / w.getframerate()
            manifest.write(json.dumps({"audio_filepath": dst, "duration": round(duration, 3),
                                       "text": entry["text"]}) + "\n")
            clips += 1
            seconds += duration
    print(f"{out}_manifest.json: {clips} clips, {seconds:.1f} s ({args.codec})")


if __name__ == "__main__":
    main()
