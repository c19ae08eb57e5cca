# SPDX-License-Identifier: MPL-2.0
"""Spectrograms that show the data pipeline makes what it says (tools/data/README.md, "Looking at it").

    PYTHONPATH=<a site-packages with matplotlib> /opt/venvs/tts/bin/python tools/data/spectrograms.py \\
        --data data --out docs/data [--dpi 50]

Three figures, each a grid of spectrograms (0-8 kHz, dB), made with generate.py's own functions:
  voices.png         one sentence in every voice family, clean (engines, accents, styles, and
                     the two held-out voices), rendered now with tts()
  augmentations.png  one clean utterance through each augmentation alone (augment() with a
                     one-effect recipe): speed, pitch, reverb, the noises, EQ, band limits,
                     telephone codecs, Opus, clipping
  dataset.png        clips of the generated set (--data), picked by their recorded recipe
                     (train_meta.jsonl): per engine, and per augmentation kind
"""
import argparse
import json
import os
import random
import sys
import tempfile

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate as g  # noqa: E402

SR = 16000
SENT = "Nothing is so firmly believed as that which we least know."


def spec_db(x, n_fft=512, hop=160):
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    w = np.hanning(n_fft).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * w
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    db = 10 * np.log10(p + 1e-10)
    return db.T - db.max()


def grid(items, path, dpi, cols=3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(items) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(4.2 * cols, 1.9 * rows), squeeze=False)
    for ax in axs.ravel():
        ax.axis("off")
    for ax, (title, x) in zip(axs.ravel(), items):
        s = spec_db(x)
        ax.imshow(s, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
                  extent=[0, len(x) / SR, 0, SR / 2000])
        ax.set_title(title, fontsize=8)
        ax.axis("on")
        ax.tick_params(labelsize=6)
        ax.set_ylabel("kHz", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    try:  # a 24-colour palette: spectrogram noise compresses badly in full colour
        from PIL import Image

        Image.open(path).convert("RGB").quantize(colors=24).save(path, optimize=True)
    except ImportError:
        pass
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB, {len(items)} panels)")


def render(v, speak=SENT):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.wav")
        g.tts(v, speak, p)
        return g.sox_f32(p, ["rate", "-h", str(SR)])


def voices(dpi, out):
    vs = [
        ("espeak en-us+m3 (normal)", {"engine": "espeak", "voice": "en-us+m3", "speed": 165, "pitch": 50, "gap": 0}),
        ("espeak en-gb-scotland+f3 slow", {"engine": "espeak", "voice": "en-gb-scotland+f3", "speed": 115, "pitch": 70, "gap": 2}),
        ("espeak en-029+Alicia fast (new)", {"engine": "espeak", "voice": "en-029+Alicia", "speed": 230, "pitch": 40, "gap": 0}),
        ("espeak en-us-nyc+iven3 (new)", {"engine": "espeak", "voice": "en-us-nyc+iven3", "speed": 160, "pitch": 25, "gap": 1}),
        ("flite kal16, f0 100+-5 (monotone, new)", {"engine": "flite", "voice": "kal16", "stretch": 1.0, "f0": [100, 5]}),
        ("flite kal16, f0 170+-45 (lively, new)", {"engine": "flite", "voice": "kal16", "stretch": 1.0, "f0": [170, 45]}),
        ("flite kal (8 kHz voice, new)", {"engine": "flite", "voice": "kal", "stretch": 1.0}),
        ("flite awb", {"engine": "flite", "voice": "awb", "stretch": 1.0}),
        ("flite rms, stretch 1.3 (new range)", {"engine": "flite", "voice": "rms", "stretch": 1.3}),
        ("festival kal, f0 150+-30 (new)", {"engine": "festival", "voice": "kal_diphone", "stretch": 1.0, "f0": [150, 30]}),
        ("hibari heart us, speed 0.8", {"engine": "hibari", "voice": "heart", "g2p": "us", "speed": 0.8, "seed": 1}),
        ("hibari heart gb, speed 1.3", {"engine": "hibari", "voice": "heart", "g2p": "gb", "speed": 1.3, "seed": 1}),
        ("HELD OUT: flite slt", {"engine": "flite", "voice": "slt", "stretch": 1.0}),
        ("HELD OUT 2: festival ked", {"engine": "festival", "voice": "ked_diphone", "stretch": 1.0}),
    ]
    grid([(t, render(v)) for t, v in vs], os.path.join(out, "voices.png"), dpi)


def augmentations(dpi, out, noise_dir):
    src = {"engine": "hibari", "voice": "heart", "g2p": "us", "speed": 1.0, "seed": 1}
    base = {"pad": [0.1, 0.1], "gain_db": 0.0}
    recipes = [
        ("clean", {"pad": [0.1, 0.1], "clean": True, "gain_db": -3}),
        ("speed 1.1 + pitch +200", dict(base, speed=1.1, pitch=200)),
        ("reverb 80/50/100", dict(base, reverb=[80, 50, 100, 100, 10, 0.0])),
        ("pink noise 10 dB", dict(base, noise={"kind": "pink", "snr_db": 10, "offset": 0.3, "track": 0})),
        ("babble 10 dB", dict(base, noise={"kind": "babble", "snr_db": 10, "offset": 0.3, "track": 3})),
        ("white noise 15 dB", dict(base, noise={"kind": "white", "snr_db": 15, "offset": 0.3, "track": 0})),
        ("mic EQ: hp 250, +8 dB @ 2.5k, -10 dB @ 600 (new)",
         dict(base, eq={"hp": 250, "peaks": [[2500, 1.5, 8.0], [600, 1.0, -10.0]]})),
        ("band: telephone 300-3400 (sinc)", dict(base, band="tel")),
        ("band: lowpass 4500", dict(base, band=4500)),
        ("phone: 8 kHz GSM full rate (new)", dict(base, phone="gsm")),
        ("phone: 8 kHz AMR-NB (new)", dict(base, phone="amr-nb")),
        ("phone: 8 kHz G.711 mu-law (new)", dict(base, phone="ulaw")),
        ("Opus 6 kb/s (new)", dict(base, opus_kbps=6)),
        ("Opus 12 kb/s (new)", dict(base, opus_kbps=12)),
        ("clipping: top 8 % of samples (new)", dict(base, clip_pct=8.0)),
    ]
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "src.wav")
        g.tts(src, SENT, p)
        items = [(t, g.augment(p, a, noise_dir)) for t, a in recipes]
    grid(items, os.path.join(out, "augmentations.png"), dpi)


def dataset(dpi, out, data, per=2, seed=0):
    rows = [json.loads(l) for l in open(os.path.join(data, "train_meta.jsonl")) if l.strip()]
    rows = [r for r in rows if "error" not in r]
    for extra in ("heldout2_meta.jsonl",):
        p = os.path.join(data, extra)
        if os.path.exists(p):
            rows += [dict(r, _dir="heldout2_ked") for r in (json.loads(l) for l in open(p)) if "error" not in r][:per]
    rng = random.Random(seed)
    rng.shuffle(rows)
    picks = []
    kinds = ["eq", "phone", "opus_kbps", "clip_pct", "band", "noise", "reverb"]
    seen = set()
    for key in kinds:
        n = 0
        for r in rows:
            a = r.get("aug") or {}
            if key in a and r["id"] not in seen and n < per:
                picks.append((key, r))
                seen.add(r["id"])
                n += 1
    for eng in ("espeak", "flite", "festival", "hibari", "festival-ked"):
        n = 0
        for r in rows:
            if r["engine"] == eng and r["id"] not in seen and n < (1 if eng != "festival-ked" else per):
                picks.append((eng, r))
                seen.add(r["id"])
                n += 1
    items = []
    for key, r in picks:
        d = r.get("_dir", "train")
        x = sf.read(os.path.join(data, d, r["id"] + ".wav"), dtype="float32")[0]
        a = r.get("aug") or {}
        desc = {k: v for k, v in a.items() if k in kinds or k in ("speed", "pitch")}
        if "eq" in desc:
            desc["eq"] = f"hp{a['eq']['hp']}+{len(a['eq']['peaks'])}pk"
        if "noise" in desc:
            desc["noise"] = f"{a['noise']['kind']} {a['noise']['snr_db']}dB"
        if "reverb" in desc:
            desc["reverb"] = a["reverb"][0]
        items.append((f"{r['id']} {r['voice_name']}\n{desc}"[:110], x))
    grid(items, os.path.join(out, "dataset.png"), dpi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "data"))
    ap.add_argument("--out", default="docs/data")
    ap.add_argument("--dpi", type=int, default=50)
    ap.add_argument("--only", nargs="*", default=["voices", "augmentations", "dataset"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if "voices" in a.only:
        voices(a.dpi, a.out)
    if "augmentations" in a.only:
        augmentations(a.dpi, a.out, os.path.join(a.data, "noise"))
    if "dataset" in a.only:
        dataset(a.dpi, a.out, a.data)


if __name__ == "__main__":
    main()
