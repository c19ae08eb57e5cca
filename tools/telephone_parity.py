#!/usr/bin/env python3
"""Telephone-band parity: our frontend + ONNX + greedy decoder against NeMo on 8 kHz speech.

Run with the NeMo 3.0 venv (/opt/venvs/nemo3/bin/python), after building the CLI
(`cargo build --release -p quartznet-transcribe`) and making the .nemo / ONNX pair
(docs/TELEPHONE.md has the commands).

What it measures, and what that proves:

1. A telephone-band set: clips of data/heldout_slt taken to 8 kHz and back to 16 kHz
   with sox (`rate 8k`, `rate 16k`, 16-bit), plus variants band-passed to 300-3400 Hz and
   mu-law coded at 8 kHz. Cached in --cache (default /tmp/telephone-set).
2. Transcripts: NeMo 3.0's `transcribe()` (batched, greedy) of the .nemo against our CLI
   (`--offline --decoder greedy`) on the ONNX exported from the SAME .nemo; compared byte for
   byte, with the character edit distance of every clip that differs. Also NeMo's own greedy
   decoding applied to OUR log-probs: what our frontend + ONNX alone decide, apart from how our
   decoder assembles the text (it leaves out spaces after the last word, engine/src/decode).
3. Features per mel band, for every clip: ours (`--dump-features`) against NeMo's
   preprocessor (eval mode, dither 0, pad_to 0), and both against an exact (float64) evaluation
   of the same formula from the same float32 inputs (the preemphasised signal, NeMo's window and
   filterbank buffers). Where ours and NeMo's differ by about as much as NeMo itself differs from
   the exact value, the difference is float32 rounding on both sides, not a frontend error.
4. Why those bands: the band's power relative to the FFT's rounding level. A float32 FFT makes
   an absolute error of a few 2^-24 * (largest amplitude of the frame) in EVERY bin, so a bin of
   power p is known only to a relative 2 * sqrt(2^-48 * max_power / p): 5e-4 at the level used
   here, p = max_power * 2^-24, and nothing at all at max_power * 2^-48. That holds on NeMo's
   side (oneMKL's FFT inside torch.stft) as on ours (rustfft). Above ~4 kHz an 8 kHz signal has
   nothing but its 16-bit rounding noise: on about half of the frames the band's power is below
   that level, its energy is 1-2 % of the 2^-24 log guard, its log-mel is ln(2^-24) plus a
   variation of ~0.02 that the FFT measures to a few 1e-3 of itself, and per-band normalisation
   scales that variation, rounding included, up to 1.
5. Log-probs: ours against NeMo's `forward` on NeMo's features, and NeMo's own log-probs on the
   exact float64 features against NeMo's on its float32 features (how much NeMo's output moves
   by its own rounding), plus NeMo's greedy transcript of the exact features.

If the transcripts agree on >= 99 % of the set (and NeMo's decoding of our log-probs gives
NeMo's text), the difference is shown not to change the output of a trained model; the clips
that differ are listed with both texts, NeMo's greedy text of the exact features and of our
log-probs, so a difference can be told apart from rounding (docs/TELEPHONE.md).
"""
import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import nemo_parity  # noqa: E402  (NeMo feature / log-prob / greedy helpers shared with the fixtures)

DEFAULT_SOURCE = os.path.join(ROOT, "data", "heldout_slt")
DEFAULT_CACHE = "/tmp/telephone-set"
DEFAULT_NEMO = "/opt/models/quartznet5x5-tts.nemo"
DEFAULT_ONNX = "/opt/models/quartznet5x5-tts.onnx"
DEFAULT_CLI = os.path.join(ROOT, "target", "release", "quartznet-transcribe")

EPS32 = 2.0**-24  # unit roundoff of float32; also NeMo's log zero guard
SR = 16000

# sox effect chains: (encoding options of the 8 kHz file, effects on the way down).
VARIANTS = {
    "tel": (["-b", "16"], ["rate", "8k"]),
    "bp": (["-b", "16"], ["sinc", "300-3400", "rate", "8k"]),
    "ulaw": (["-e", "u-law", "-b", "8"], ["rate", "8k"]),
}


# --------------------------------------------------------------------------------------------
# the telephone-band set


def sox(args):
    # -R: repeatable (sox's dither is seeded), so the set is the same on every run.
    subprocess.run(["sox", "-R", "-V1", *args], check=True)


def make_clip(src: str, dst: str, variant: str):
    """src (16 kHz) -> 8 kHz file -> 16 kHz 16-bit mono WAV dst."""
    enc, effects = VARIANTS[variant]
    with tempfile.TemporaryDirectory() as tmp:
        mid = os.path.join(tmp, "8k.wav")
        sox([src, "-c", "1", *enc, mid, *effects])
        sox([mid, "-c", "1", "-e", "signed-integer", "-b", "16", dst, "rate", "16k"])


def build_set(source: str, cache: str, count: int, every: int):
    """First `count` clips of `source` as 'tel'; every `every`-th of them also as 'bp' and 'ulaw'."""
    srcs = sorted(f for f in os.listdir(source) if f.endswith(".wav"))[:count]
    if len(srcs) < count:
        raise SystemExit(f"{source}: only {len(srcs)} WAV files, need {count}")
    os.makedirs(cache, exist_ok=True)
    jobs = []
    for i, f in enumerate(srcs):
        stem = os.path.splitext(f)[0]
        variants = ["tel"]
        if every and i % every == 1:
            variants.append("bp")
        if every and i % every == 3:
            variants.append("ulaw")
        for v in variants:
            jobs.append((os.path.join(source, f), os.path.join(cache, f"{stem}.{v}.wav"), v))
    made = 0
    for src, dst, v in jobs:
        if not os.path.exists(dst):
            make_clip(src, dst, v)
            made += 1
    print(f"telephone set: {len(jobs)} clips in {cache} ({made} made now)")
    return [(dst, v) for _, dst, v in jobs]


# --------------------------------------------------------------------------------------------
# the two fixture clips of tests/fixtures/audio

# Text of our own, synthesised (not taken from any data set), then sent through 8 kHz.
FIXTURE_CLIPS = {
    "phone_espeak": ("espeak-ng", "please call me back on the office line after four"),
    "phone_flite": ("flite", "thank you for calling, your order ships today"),
}
HOP = 160


def make_fixtures(out: str):
    """TTS -> 8 kHz 16-bit -> 16 kHz 16-bit, silence trimmed, length not a multiple of the hop.

    sox runs with -D (no dither) so the clips are the same bytes on every machine; the 16-bit
    rounding at both rates still leaves a noise floor far below the speech above 4 kHz.
    """
    import soundfile as sf

    os.makedirs(out, exist_ok=True)
    for name, (engine, text) in FIXTURE_CLIPS.items():
        with tempfile.TemporaryDirectory() as tmp:
            raw, mid, back = (os.path.join(tmp, f) for f in ("raw.wav", "8k.wav", "16k.wav"))
            if engine == "espeak-ng":
                subprocess.run(["espeak-ng", "-w", raw, text], check=True)
            else:
                subprocess.run(["flite", "-t", text, "-o", raw], check=True)
            subprocess.run(["sox", "-D", "-V1", raw, "-c", "1", "-b", "16", mid, "rate", "8k"], check=True)
            subprocess.run(["sox", "-D", "-V1", mid, "-c", "1", "-b", "16", back, "rate", "16k"], check=True)
            x, sr = sf.read(back, dtype="int16")
        assert sr == SR
        loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 200)
        x = x[max(0, loud[0] - 800):loud[-1] + 800]
        if len(x) % HOP == 0:
            x = x[:-1]
        path = os.path.join(out, f"{name}.wav")
        sf.write(path, x, SR, subtype="PCM_16")
        print(f"{path}: {len(x)} samples, {len(x) / SR:.3f} s, len % 160 = {len(x) % HOP} ({engine}: {text!r})")


# --------------------------------------------------------------------------------------------
# NeMo side


def load_nemo(path: str):
    import torch
    from nemo.collections.asr.models import EncDecCTCModel

    nemo_parity.quiet_nemo()
    torch.set_grad_enabled(False)
    model = EncDecCTCModel.restore_from(path, map_location="cpu")
    model.eval()
    nemo_parity.inference_frontend(model)
    return model


def nemo_transcribe(model, paths, batch_size: int):
    hyps = model.transcribe(paths, batch_size=batch_size, verbose=False)
    if isinstance(hyps, tuple):
        hyps = hyps[0]
    model.eval()  # NeMo 3.0's transcribe() leaves the model in training mode
    nemo_parity.inference_frontend(model)
    return [h.text if hasattr(h, "text") else str(h) for h in hyps]


def nemo_raw_logmel(model, audio):
    """NeMo's preprocessor without normalisation (the raw log-mel), valid frames only."""
    fz = model.preprocessor.featurizer
    saved = fz.normalize
    fz.normalize = None
    try:
        feats, _ = nemo_parity.nemo_features(model, audio)
    finally:
        fz.normalize = saved
    return feats[0].numpy().astype(np.float64)


@functools.lru_cache(maxsize=None)
def pad_mode():
    return nemo_parity.pad_mode_of_this_nemo()


def exact_power(model, audio):
    """float64 STFT power of NeMo's float32 preemphasised, zero-padded signal ([bins, frames])."""
    import torch

    fz = model.preprocessor.featurizer
    x = torch.from_numpy(audio)
    y = torch.cat((x[:1], x[1:] - fz.preemph * x[:-1])).numpy().astype(np.float64)  # torch f32 ops
    pad = fz.n_fft // 2
    y = np.pad(y, pad) if pad_mode() == "zeros" else np.pad(y, pad, mode="reflect")
    w = fz.window.numpy().astype(np.float64)
    wpad = np.zeros(fz.n_fft)
    off = (fz.n_fft - len(w)) // 2
    wpad[off:off + len(w)] = w
    n = 1 + (len(y) - fz.n_fft) // fz.hop_length
    idx = np.arange(fz.n_fft)[None, :] + fz.hop_length * np.arange(n)[:, None]
    return (np.abs(np.fft.rfft(y[idx] * wpad, axis=1)) ** 2).T


def per_feature(raw):
    """NeMo's per_feature normalisation, in float64."""
    mu = raw.mean(axis=1, keepdims=True)
    sd = np.sqrt(((raw - mu) ** 2).sum(axis=1, keepdims=True) / (raw.shape[1] - 1)) + 1e-5
    return (raw - mu) / sd


def nemo_clip(model, path: str):
    """Everything NeMo gives for one clip, plus the exact float64 evaluation."""
    import torch

    audio = nemo_parity.load_audio(path)
    feats, info = nemo_parity.nemo_features(model, audio)
    tv = info["valid_frames"]
    logp, enc_len = nemo_parity.nemo_logprobs(model, feats)
    raw32 = nemo_raw_logmel(model, audio)
    fb = model.preprocessor.featurizer.fb[0].numpy().astype(np.float64)  # [n_mels, bins]
    power = exact_power(model, audio)[:, :tv]
    energy = fb @ power
    raw64 = np.log(energy + EPS32)
    norm64 = per_feature(raw64)
    logp64, enc64 = nemo_parity.nemo_logprobs(model, torch.from_numpy(norm64[None].astype(np.float32)))
    # The band's mean bin power in units of the FFT's rounding level of its frame (max bin power
    # * 2^-24): below 1, the float32 value of the band is rounding noise.
    band_power = energy / fb.sum(axis=1, keepdims=True)
    level = power.max(axis=0, keepdims=True) * EPS32
    return {
        "features": feats[0].numpy().astype(np.float64),
        "raw32": raw32,
        "raw64": raw64,
        "norm64": norm64,
        "logprobs": logp[0].numpy().astype(np.float64),
        "logprobs64": logp64[0].numpy().astype(np.float64),
        "greedy": nemo_parity.nemo_greedy_text(model, logp, enc_len),
        "greedy64": nemo_parity.nemo_greedy_text(model, logp64, enc64),
        "rounding_ratio": band_power / np.maximum(level, 1e-300),
        "below_guard": energy < EPS32,
    }


# --------------------------------------------------------------------------------------------
# our side


def nemo_decode(model, logprobs):
    """NeMo's own CTC greedy decoding (the routine transcribe() ends with) of OUR log-probs."""
    import torch

    lp = torch.from_numpy(logprobs[None].astype(np.float32))
    return nemo_parity.nemo_greedy_text(model, lp, torch.tensor([lp.shape[1]]))


def ours_clip(cli: str, onnx: str, path: str, tmp: str, threads: int):
    """Our CLI, offline greedy: text, features and log-probs of one clip."""
    f, l = os.path.join(tmp, "f.npy"), os.path.join(tmp, "l.npy")
    out = subprocess.run(
        [cli, "--model", onnx, "--offline", "--decoder", "greedy", "--json", "--threads", str(threads),
         "--dump-features", f, "--dump-logprobs", l, path],
        check=True, capture_output=True, text=True,
    ).stdout
    text = json.loads(out.strip().splitlines()[-1])["text"]
    return text, np.load(f)[0].astype(np.float64), np.load(l)[0].astype(np.float64)


# --------------------------------------------------------------------------------------------
# statistics


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def band_centres(model):
    """Centre frequency (Hz) of each mel band: the peak of its triangle."""
    fb = model.preprocessor.featurizer.fb[0].numpy()
    n_fft = model.preprocessor.featurizer.n_fft
    return [float(b) * SR / n_fft for b in fb.argmax(axis=1)]


def band_table(rows, centres):
    """Per band over all clips: max differences, spreads and energy relative to rounding."""
    stack = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    table = []
    for m, hz in enumerate(centres):
        table.append({
            "band": m,
            "centre_hz": round(hz, 1),
            "max_ours_vs_nemo": float(stack["d_ours_nemo"][:, m].max()),
            "max_nemo_vs_exact": float(stack["d_nemo_exact"][:, m].max()),
            "max_ours_vs_exact": float(stack["d_ours_exact"][:, m].max()),
            "max_raw_nemo_vs_exact": float(stack["d_raw_nemo_exact"][:, m].max()),
            "max_raw_ours_vs_nemo": float(stack["d_raw_ours_nemo"][:, m].max()),
            "min_spread": float(stack["spread"][:, m].min()),
            "median_spread": float(np.median(stack["spread"][:, m])),
            "median_log10_rounding_ratio": float(np.median(stack["log10_ratio"][:, m])),
            "frames_below_rounding": float(stack["frac_below_rounding"][:, m].mean()),
            "frames_below_guard": float(stack["frac_below_guard"][:, m].mean()),
        })
    return table


def clip_band_stats(n, ours_feats):
    """Per-band figures of one clip (each an array over the mel bands)."""
    spread = n["raw64"].std(axis=1, ddof=1)
    d_ours_nemo = np.abs(ours_feats - n["features"]).max(axis=1)
    ratio = n["rounding_ratio"]
    return {
        "d_ours_nemo": d_ours_nemo,
        "d_nemo_exact": np.abs(n["features"] - n["norm64"]).max(axis=1),
        "d_ours_exact": np.abs(ours_feats - n["norm64"]).max(axis=1),
        "d_raw_nemo_exact": np.abs(n["raw32"] - n["raw64"]).max(axis=1),
        # normalised difference in raw log units (what a band's value means before scaling)
        "d_raw_ours_nemo": d_ours_nemo * (spread + 1e-5),
        "spread": spread,
        "log10_ratio": np.median(np.log10(np.maximum(ratio, 1e-30)), axis=1),
        "frac_below_rounding": (ratio < 1.0).mean(axis=1),
        "frac_below_guard": n["below_guard"].mean(axis=1),
    }


def group_summary(table, edges):
    """Max differences per frequency range (edges in Hz)."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [b for b in table if lo <= b["centre_hz"] < hi]
        if not sel:
            continue
        out.append({
            "range_hz": [lo, hi],
            "bands": [sel[0]["band"], sel[-1]["band"]],
            "max_ours_vs_nemo": max(b["max_ours_vs_nemo"] for b in sel),
            "max_nemo_vs_exact": max(b["max_nemo_vs_exact"] for b in sel),
            "max_raw_ours_vs_nemo": max(b["max_raw_ours_vs_nemo"] for b in sel),
            "max_raw_nemo_vs_exact": max(b["max_raw_nemo_vs_exact"] for b in sel),
            "min_spread": min(b["min_spread"] for b in sel),
            "median_log10_rounding_ratio": float(np.median([b["median_log10_rounding_ratio"] for b in sel])),
            "frames_below_rounding": float(np.mean([b["frames_below_rounding"] for b in sel])),
        })
    return out


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="16 kHz clips to telephone-band")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="where the telephone-band WAVs go")
    ap.add_argument("--count", type=int, default=120, help="source clips (each becomes a 'tel' clip)")
    ap.add_argument("--variant-every", type=int, default=5,
                    help="every N-th source clip is also band-passed ('bp') and mu-law coded ('ulaw'); 0: none")
    ap.add_argument("--nemo", default=DEFAULT_NEMO, help="the .nemo NeMo transcribes with")
    ap.add_argument("--onnx", default=DEFAULT_ONNX, help="the ONNX exported from that .nemo (ours)")
    ap.add_argument("--cli", default=DEFAULT_CLI, help="quartznet-transcribe binary")
    ap.add_argument("--batch-size", type=int, default=8, help="NeMo transcribe() batch size")
    ap.add_argument("--threads", type=int, default=0, help="our ONNX Runtime threads (0: one per core)")
    ap.add_argument("--json", help="write the summary (per clip and per band) here")
    ap.add_argument("--make-fixtures", metavar="DIR",
                    help="only write the telephone-band test clips (phone_*.wav) into DIR, e.g. tests/fixtures/audio")
    args = ap.parse_args()
    if args.make_fixtures:
        make_fixtures(args.make_fixtures)
        return

    clips = build_set(args.source, args.cache, args.count, args.variant_every)
    paths = [p for p, _ in clips]
    model = load_nemo(args.nemo)
    print(f"NeMo transcribe() of {len(paths)} clips (batch {args.batch_size}) ...", flush=True)
    nemo_texts = nemo_transcribe(model, paths, args.batch_size)

    per_clip, band_rows = [], []
    logp_worst, logp64_worst = 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for (path, variant), nemo_text in zip(clips, nemo_texts):
            name = os.path.basename(path)[:-4]
            n = nemo_clip(model, path)
            ours_text, ours_feats, ours_logp = ours_clip(args.cli, args.onnx, path, tmp, args.threads)
            assert ours_feats.shape == n["features"].shape, (name, ours_feats.shape, n["features"].shape)
            assert ours_logp.shape == n["logprobs"].shape, (name, ours_logp.shape, n["logprobs"].shape)
            ours_by_nemo = nemo_decode(model, ours_logp)
            stats = clip_band_stats(n, ours_feats)
            band_rows.append(stats)
            d_logp = float(np.abs(ours_logp - n["logprobs"]).max())
            d_logp64 = float(np.abs(n["logprobs64"] - n["logprobs"]).max())
            logp_worst, logp64_worst = max(logp_worst, d_logp), max(logp64_worst, d_logp64)
            per_clip.append({
                "clip": name,
                "variant": variant,
                "frames": int(n["features"].shape[1]),
                "nemo_transcribe": nemo_text,
                "ours": ours_text,
                "identical": ours_text == nemo_text,
                "edit_distance": edit_distance(ours_text, nemo_text),
                "nemo_decoder_on_our_logprobs": ours_by_nemo,
                "trailing_spaces_only": ours_text != nemo_text and ours_text.rstrip(" ") == nemo_text.rstrip(" "),
                "nemo_greedy_single": n["greedy"],
                "nemo_greedy_exact_features": n["greedy64"],
                "max_feature_diff": float(stats["d_ours_nemo"].max()),
                "max_feature_diff_band": int(stats["d_ours_nemo"].argmax()),
                "max_nemo_vs_exact_feature_diff": float(stats["d_nemo_exact"].max()),
                "max_logprob_diff": d_logp,
                "max_nemo_exact_vs_f32_logprob_diff": d_logp64,
            })
            if len(per_clip) % 20 == 0:
                print(f"  {len(per_clip)}/{len(clips)} clips", flush=True)

    centres = band_centres(model)
    table = band_table(band_rows, centres)
    groups = group_summary(table, [0, 3400, 4000, 8001])
    same = sum(c["identical"] for c in per_clip)
    trailing = sum(c["trailing_spaces_only"] for c in per_clip)
    same_path = sum(c["nemo_decoder_on_our_logprobs"] == c["nemo_transcribe"] for c in per_clip)
    nemo_self = sum(c["nemo_greedy_single"] == c["nemo_transcribe"] for c in per_clip)
    nemo_exact = sum(c["nemo_greedy_exact_features"] == c["nemo_transcribe"] for c in per_clip)
    by_variant = {}
    for c in per_clip:
        v = by_variant.setdefault(c["variant"], [0, 0])
        v[0] += c["identical"]
        v[1] += 1

    print()
    print("band  centre_Hz  |ours-NeMo|  |NeMo-f64|  |ours-f64|  raw|ours-NeMo|  raw|NeMo-f64|  "
          "spread(min/med)  log10(power/rounding)  frames<rounding")
    for b in table:
        print(f"{b['band']:4d} {b['centre_hz']:10.0f}  {b['max_ours_vs_nemo']:10.2e}  {b['max_nemo_vs_exact']:10.2e}"
              f"  {b['max_ours_vs_exact']:9.2e}  {b['max_raw_ours_vs_nemo']:13.2e}  {b['max_raw_nemo_vs_exact']:12.2e}"
              f"  {b['min_spread']:7.3f}/{b['median_spread']:6.3f}  {b['median_log10_rounding_ratio']:21.1f}"
              f"  {100 * b['frames_below_rounding']:14.1f}%")
    print()
    for g in groups:
        lo, hi = g["range_hz"]
        print(f"{lo:5.0f}-{min(hi, 8000):4.0f} Hz (bands {g['bands'][0]}-{g['bands'][1]}): max |ours-NeMo| "
              f"{g['max_ours_vs_nemo']:.2e} (raw {g['max_raw_ours_vs_nemo']:.2e}), NeMo's own |f32-f64| "
              f"{g['max_nemo_vs_exact']:.2e} (raw {g['max_raw_nemo_vs_exact']:.2e}), min spread "
              f"{g['min_spread']:.3f}, median log10(power/rounding level) {g['median_log10_rounding_ratio']:.1f}, "
              f"frames below rounding {100 * g['frames_below_rounding']:.0f}%")
    print()
    print(f"log-probs: max |ours - NeMo| {logp_worst:.2e}; NeMo on exact f64 features vs NeMo on its own "
          f"f32 features: max {logp64_worst:.2e}")
    print(f"NeMo transcribe() vs NeMo's greedy of the single clip: {nemo_self}/{len(per_clip)} identical; "
          f"NeMo's greedy of the exact f64 features vs transcribe(): {nemo_exact}/{len(per_clip)} identical")
    print("per variant: " + ", ".join(f"{v} {a}/{n}" for v, (a, n) in sorted(by_variant.items())))
    print(f"clips: {len(per_clip)}; identical transcripts: {same} ({100.0 * same / len(per_clip):.2f} %); "
          f"differing only by trailing spaces: {trailing}")
    print(f"NeMo's greedy decoding of OUR log-probs vs NeMo transcribe(): {same_path}/{len(per_clip)} identical "
          f"({100.0 * same_path / len(per_clip):.2f} %)")
    for c in per_clip:
        if not c["identical"]:
            print(f"  {c['clip']}: edit distance {c['edit_distance']}, max |feature diff| "
                  f"{c['max_feature_diff']:.2e} (band {c['max_feature_diff_band']}), max |logprob diff| "
                  f"{c['max_logprob_diff']:.2e}\n    nemo: {c['nemo_transcribe']!r}\n    ours: {c['ours']!r}"
                  f"\n    NeMo greedy on exact f64 features: {c['nemo_greedy_exact_features']!r}"
                  f"\n    NeMo greedy on our log-probs: {c['nemo_decoder_on_our_logprobs']!r}"
                  f"{'  (trailing spaces only)' if c['trailing_spaces_only'] else ''}")

    if args.json:
        summary = {
            "nemo": args.nemo,
            "onnx": args.onnx,
            "clips": len(per_clip),
            "identical": same,
            "identical_percent": round(100.0 * same / len(per_clip), 2),
            "differing_only_by_trailing_spaces": trailing,
            "nemo_decoder_on_our_logprobs_identical": same_path,
            "per_variant": {v: {"identical": a, "clips": n} for v, (a, n) in sorted(by_variant.items())},
            "nemo_transcribe_vs_single_clip_greedy_identical": nemo_self,
            "nemo_exact_features_greedy_vs_transcribe_identical": nemo_exact,
            "max_logprob_diff": logp_worst,
            "max_nemo_exact_vs_f32_logprob_diff": logp64_worst,
            "groups": groups,
            "bands": table,
            "differing": [c for c in per_clip if not c["identical"]],
            "per_clip": per_clip,
        }
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
