#!/usr/bin/env python3
"""Independent numpy implementation of the frontend exactly as written in docs/FRONTEND.md,
checked against NeMo's own features in tests/fixtures/nemo-*/ (both padding modes).

Why: the Rust frontend is written from that description, not from NeMo's code. If this plain transcription
of it matches NeMo to float32 precision, the description is complete, and the residual printed here
is the error budget a correct Rust implementation should expect (f32 arithmetic, FFT order).

Usage: python tools/spec_frontend.py [--fixtures tests/fixtures]   (numpy + soundfile only)
"""
import argparse
import json
import os

import numpy as np
import soundfile as sf

SR, WIN, HOP, NFFT, NMELS = 16000, 320, 160, 512, 64


def slaney_mel_filterbank(n_mels=NMELS, n_fft=NFFT, sr=SR, fmin=0.0, fmax=8000.0):
    """librosa.filters.mel(htk=False, norm='slaney'), written out as in docs/FRONTEND.md."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fft_f = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    fb = np.maximum(0, np.minimum(lower, upper))
    fb *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return fb.astype(np.float32)


def spec_features(x_i16: np.ndarray, pad_mode: str) -> np.ndarray:
    x = x_i16.astype(np.float32) / 32768.0
    L = len(x)
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - np.float32(0.97) * x[:-1]
    if pad_mode == "reflect":
        yp = np.pad(y, NFFT // 2, mode="reflect")  # numpy "reflect" = no edge repeat, like torch
    else:
        yp = np.pad(y, NFFT // 2, mode="constant")
    n = np.arange(WIN)
    w = (0.5 - 0.5 * np.cos(2 * np.pi * n / (WIN - 1))).astype(np.float32)
    wp = np.zeros(NFFT, np.float32)
    wp[(NFFT - WIN) // 2:(NFFT - WIN) // 2 + WIN] = w
    F = 1 + L // HOP
    frames = np.stack([yp[HOP * t:HOP * t + NFFT] for t in range(F)]) * wp
    P = np.abs(np.fft.rfft(frames.astype(np.float64), n=NFFT)) ** 2
    M = np.log(slaney_mel_filterbank().astype(np.float64) @ P.T + 2.0 ** -24)  # [64, F]
    tv = F if pad_mode == "reflect" else L // HOP
    Mv = M[:, :tv]
    mu = Mv.mean(axis=1, keepdims=True)
    sigma = np.sqrt(((Mv - mu) ** 2).sum(axis=1, keepdims=True) / (tv - 1)) + 1e-5
    return ((Mv - mu) / sigma).astype(np.float32)[None]  # [1, 64, Tv]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    args = ap.parse_args()
    man = json.load(open(os.path.join(args.fixtures, "manifest.json")))
    fb = slaney_mel_filterbank()
    print(f"filterbank check: row0 bins1,2 = {fb[0, 1]:.8f} {fb[0, 2]:.8f}; sum = {fb.sum():.5f}")
    for v in man["versions"]:
        for c in man["clips"]:
            x, sr = sf.read(os.path.join(args.fixtures, c["audio"]), dtype="int16")
            ours = spec_features(x, v["pad_mode"])
            ref = np.load(os.path.join(args.fixtures, v["dir"], c["name"] + ".features.npy"))
            assert ours.shape == ref.shape, (ours.shape, ref.shape)
            d = np.abs(ours - ref)
            print(f"NeMo {v['nemo_version']} ({v['pad_mode']}) {c['name']}: shape {ref.shape}, "
                  f"max|diff| {d.max():.3g}, mean {d.mean():.3g}")


if __name__ == "__main__":
    main()
