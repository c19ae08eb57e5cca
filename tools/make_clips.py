#!/usr/bin/env python3
"""Generate the small test clips under tests/fixtures/audio/ (16 kHz mono S16 WAV).

Why these clips:
  * synthetic speech (espeak-ng, flite): licence-free, reproducible on Debian;
  * a chirp + tones + noise clip: non-speech, exercises every mel band;
  * a clip shorter than 0.5 s: few feature frames, edge cases in normalisation;
  * one real speech clip (LJSpeech LJ001-0001, public domain);
  * every length is deliberately NOT a multiple of the 160-sample hop, because that is
    where NeMo <= 2.4 (reflect, 1 + floor(L/160) frames) and >= 2.5 (zeros, floor(L/160)
    valid frames) differ the most.

Needs: espeak-ng, flite, sox on PATH; numpy + soundfile (both in the NeMo venvs).
Usage: python tools/make_clips.py [--out tests/fixtures/audio] [--real eval/real-dev/LJ001-0001.wav]
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf

SR = 16000
HOP = 160
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository


def resample_to_16k(src: str, dst: str) -> None:
    # sox: any rate/channels -> 16 kHz mono 16-bit signed. `-D` disables dither so the
    # output is deterministic (sox dithers by default when reducing bit depth).
    subprocess.run(["sox", "-D", src, "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed-integer", dst], check=True)


def tts(engine: str, text: str, dst: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "raw.wav")
        if engine == "espeak-ng":
            subprocess.run(["espeak-ng", "-w", raw, text], check=True)  # 22.05 kHz
        elif engine == "flite":
            subprocess.run(["flite", "-t", text, "-o", raw], check=True)  # 8 kHz
        else:
            raise ValueError(engine)
        resample_to_16k(raw, dst)
    x, sr = sf.read(dst, dtype="int16")
    assert sr == SR
    return x


def not_multiple_of_hop(x: np.ndarray) -> np.ndarray:
    # Trim (never pad) so that len % 160 != 0.
    if len(x) % HOP == 0:
        x = x[:-1]
    return x


def trim_silence(x: np.ndarray, thresh: int = 200, margin: int = 800) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x.astype(np.int32)) > thresh)
    if len(idx) == 0:
        return x
    return x[max(0, idx[0] - margin): idx[-1] + margin]


def write(path: str, x: np.ndarray) -> None:
    sf.write(path, x.astype(np.int16), SR, subtype="PCM_16")


def chirp_tones_noise(n: int, seed: int = 1234) -> np.ndarray:
    # Linear chirp 100 Hz -> 7 kHz, plus two steady tones and white noise at -30 dB.
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    dur = n / SR
    f0, f1 = 100.0, 7000.0
    chirp = np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t * t))
    tones = 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 2500.0 * t)
    noise = 0.03 * rng.standard_normal(n)
    y = 0.4 * chirp + tones + noise
    # Fade in/out 10 ms to avoid clicks at the edges.
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * SR))
    y = y * fade
    return np.clip(np.round(y / np.max(np.abs(y)) * 0.7 * 32767), -32768, 32767).astype(np.int16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/audio")
    ap.add_argument("--real", default=os.path.join(ROOT, "eval", "real-dev", "LJ001-0001.wav"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # 1. Short clip: espeak "yes", cut to exactly 5923 samples (0.370 s; 5923 % 160 = 3).
    p = os.path.join(args.out, "short_yes.wav")
    x = trim_silence(tts("espeak-ng", "yes", p), margin=400)
    x = x[:5923] if len(x) >= 5923 else np.pad(x, (0, 5923 - len(x)))
    write(p, x)

    # 2. espeak-ng pangram.
    p = os.path.join(args.out, "espeak_fox.wav")
    write(p, not_multiple_of_hop(tts("espeak-ng", "the quick brown fox jumps over the lazy dog", p)))

    # 3. flite sentence (different voice / synthesis method).
    p = os.path.join(args.out, "flite_hello.wav")
    write(p, not_multiple_of_hop(tts("flite", "hello world, this is a streaming speech test.", p)))

    # 4. Non-speech: 1.2345 s chirp + tones + noise (19752 samples, 19752 % 160 = 72).
    write(os.path.join(args.out, "chirp_tones.wav"), chirp_tones_noise(19752))

    # 5. Real speech: LJSpeech LJ001-0001 (public domain), 154480 samples (% 160 = 80), copied as is.
    x, sr = sf.read(args.real, dtype="int16")
    assert sr == SR and x.ndim == 1, "expected 16 kHz mono"
    write(os.path.join(args.out, "LJ001-0001.wav"), not_multiple_of_hop(x))

    for f in sorted(os.listdir(args.out)):
        y, sr = sf.read(os.path.join(args.out, f), dtype="int16")
        print(f"{f}: {len(y)} samples, {len(y) / sr:.3f} s, len % 160 = {len(y) % HOP}")


if __name__ == "__main__":
    main()
