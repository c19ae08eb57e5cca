#!/usr/bin/env python3
"""A tiny bundle in the transport format, for smoke tests of train_gpu.py / to_nemo.py.

espeak-ng speaks N sentences (a few voices and speeds), sox converts to 16 kHz mono, opusenc
encodes Ogg/Opus; ``manifest.jsonl`` holds {"audio_filepath": "audio/<id>.opus", "text", "duration",
"voice"} with paths relative to the bundle. NOT training data: it only exercises the code path.

  python3 tools/train/make_smoke_bundle.py --n 80 --out /tmp/smoke_bundle
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import normalize_text  # noqa: E402

FALLBACK = [
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "a stitch in time saves nine",
    "all that glitters is not gold",
    "the early bird catches the worm",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--out", default="/tmp/smoke_bundle")
    ap.add_argument("--sentences", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "data", "sentences.jsonl"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sents = []
    if os.path.exists(args.sentences):
        with open(args.sentences) as f:
            for line in f:
                r = json.loads(line)
                t = r.get("text") or r.get("speak")
                if t and 3 <= len(t.split()) <= 14:
                    sents.append(t)
                if len(sents) > 20000:
                    break
    if not sents:
        sents = FALLBACK
    os.makedirs(os.path.join(args.out, "audio"), exist_ok=True)
    voices = ["en-us", "en", "en-us+f3", "en+m3", "en-us+f2"]
    recs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            text = rng.choice(sents)
            norm, _ = normalize_text(text)
            v = rng.choice(voices)
            sp = rng.choice([150, 170, 190])
            raw, w16 = os.path.join(tmp, "a.wav"), os.path.join(tmp, "b.wav")
            subprocess.run(["espeak-ng", "-v", v, "-s", str(sp), "-w", raw, text], check=True)
            subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", w16], check=True)
            with wave.open(w16) as w:
                dur = w.getnframes() / w.getframerate()
            rel = f"audio/{i:06d}.opus"
            subprocess.run(["opusenc", "--quiet", "--bitrate", "24", w16, os.path.join(args.out, rel)], check=True)
            recs.append({"audio_filepath": rel, "text": norm, "duration": round(dur, 3), "voice": f"espeak:{v}:{sp}"})
    with open(os.path.join(args.out, "manifest.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    tot = sum(r["duration"] for r in recs)
    print(f"wrote {len(recs)} clips, {tot / 60:.1f} min, to {args.out}")


if __name__ == "__main__":
    main()
