#!/usr/bin/env python3
"""Check the pure-torch trainer against NeMo itself (run with /opt/venvs/nemo3/bin/python, or
/opt/venvs/nemo24/bin/python for the reflect-padding frontend).

  1. model: for each config, NeMo's EncDecCTCModel and quartznet.QuartzNet have IDENTICAL
     state_dict keys, shapes and dtypes; with NeMo's weights loaded (strict) and non-trivial
     BatchNorm statistics, eval-mode log-probs and lengths agree within --tol (default 1e-4) on
     a random padded batch (different lengths -> exercises the masked convolutions), and the
     reverse load (ours -> NeMo, strict) works;
  2. features: features.AudioToMelSpectrogramPreprocessor vs NeMo's preprocessor (eval, dither 0,
     pad_to 0) on tests/fixtures/audio/*.wav, one clip at a time and as one padded batch;
  3. resampler: features.Resampler vs torchaudio.functional.resample (if torchaudio is present);
  4. augmentation: spec_augment / spec_cutout shapes, fill value and mask statistics.

Exit status 0 only if every check passes.
"""
import argparse
import copy
import glob
import logging as pylogging
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import features  # noqa: E402
import quartznet  # noqa: E402

FAIL = []


def check(ok, msg):
    print(("  ok   " if ok else "  FAIL ") + msg, flush=True)
    if not ok:
        FAIL.append(msg)


def quiet_nemo():
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(pylogging.ERROR)


def nemo_model(config_path):
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecCTCModel

    cfg = OmegaConf.load(config_path)
    torch.manual_seed(0)
    return EncDecCTCModel(cfg=cfg.model)


def nemo_pad_mode():
    import inspect

    from nemo.collections.asr.parts.preprocessing.features import FilterbankFeatures

    src = inspect.getsource(FilterbankFeatures.stft)
    return "constant" if 'pad_mode="constant"' in src or "pad_mode='constant'" in src else "reflect"


def randomise(model, g):
    """Non-trivial weights: random BN affine + running stats, random decoder bias."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(torch.exp(0.5 * torch.randn(n, generator=g)))
                m.num_batches_tracked.fill_(7)
        dec = model.decoder.decoder_layers[0]
        dec.weight.mul_(3.0)
        dec.bias.copy_(0.5 * torch.randn(dec.bias.shape, generator=g))


def check_model(config_path, tol, batch, seed):
    print(f"[model] {os.path.relpath(config_path, ROOT)}", flush=True)
    nm = nemo_model(config_path)
    cfg = quartznet.load_config(config_path)
    ours = quartznet.QuartzNet(cfg)
    sd_n, sd_o = nm.state_dict(), ours.state_dict()
    check(list(sd_n.keys()) == list(sd_o.keys()), f"state_dict keys identical and in the same order ({len(sd_n)} keys)")
    bad = [k for k in sd_n if k in sd_o and (sd_n[k].shape != sd_o[k].shape or sd_n[k].dtype != sd_o[k].dtype)]
    check(not bad, f"shapes and dtypes identical{'' if not bad else ': ' + str(bad[:5])}")
    pn = sum(p.numel() for p in nm.parameters())
    po = sum(p.numel() for p in ours.parameters())
    check(pn == po, f"parameter count {po} (NeMo {pn})")
    # buffers of the frontend equal too
    for k in ("preprocessor.featurizer.window", "preprocessor.featurizer.fb"):
        d = (sd_n[k] - sd_o[k]).abs().max().item()
        check(d < 1e-7, f"{k} equal (max abs diff {d:.2g})")

    g = torch.Generator().manual_seed(seed)
    randomise(nm, g)
    missing, unexpected = ours.load_state_dict(nm.state_dict(), strict=True), None
    nm.eval()
    ours.eval()
    T = 400
    x = torch.randn(batch, 64, T, generator=g)
    lens = torch.tensor([T, T - 37, T // 2 + 3, 61][:batch], dtype=torch.long)
    for b in range(batch):
        x[b, :, lens[b]:] = 0.0  # like the preprocessor's output
    with torch.no_grad():
        lp_n, len_n, _ = nm.forward(processed_signal=x, processed_signal_length=lens)
        lp_o, len_o = ours(x, lens)
    check(torch.equal(len_n.cpu(), len_o.cpu()), f"encoded lengths equal {len_o.tolist()}")
    diffs = []
    for b in range(batch):
        n = int(len_n[b])
        diffs.append((lp_n[b, :n] - lp_o[b, :n]).abs().max().item())
    d = max(diffs)
    check(d < tol, f"eval log-probs (valid frames, padded batch of {batch}) max abs diff {d:.3g} < {tol}")
    am = all(torch.equal(lp_n[b, : int(len_n[b])].argmax(-1), lp_o[b, : int(len_n[b])].argmax(-1)) for b in range(batch))
    check(am, "argmax identical on every valid frame")
    # whole tensor including padded frames (NeMo does not mask the output; neither do we)
    dall = (lp_n - lp_o).abs().max().item()
    check(dall < tol, f"eval log-probs incl. padded frames max abs diff {dall:.3g}")

    # train mode (batch statistics, dropout 0 in these configs): same forward. With random BN
    # affine parameters a deep net in train mode amplifies rounding (15x5: NeMo against itself with
    # 1e-6 input noise differs by ~0.06), so both are compared with NeMo run in float64.
    nm.train()
    ours.train()
    sd_before = copy.deepcopy(nm.state_dict())
    with torch.no_grad():
        lp_n2, _, _ = nm.forward(processed_signal=x, processed_signal_length=lens)
        lp_o2, _ = ours(x, lens)
        sd_after = copy.deepcopy(nm.state_dict())
        nm.load_state_dict(sd_before)
        nm.double()
        lp_64, _, _ = nm.forward(processed_signal=x.double(), processed_signal_length=lens)
        nm.float()
        nm.load_state_dict(sd_after)
    d2 = (lp_n2 - lp_o2).abs().max().item()
    e_n = (lp_n2.double() - lp_64).abs().max().item()
    e_o = (lp_o2.double() - lp_64).abs().max().item()
    check(e_o <= 2 * e_n + tol, f"train-mode (batch-stat BN) log-probs: ours vs NeMo {d2:.3g}; vs NeMo-float64 "
                                f"ours {e_o:.3g}, NeMo-float32 {e_n:.3g}")
    rm = max((a - b).abs().max().item() for (ka, a), (kb, b) in zip(nm.state_dict().items(), ours.state_dict().items())
             if "running" in ka)
    check(rm < 1e-4, f"BN running stats after one train-mode step agree (max abs diff {rm:.3g})")

    # reverse direction: our weights load strictly into NeMo
    ours2 = quartznet.QuartzNet(cfg)
    ours2.reset_parameters(torch.Generator().manual_seed(seed + 1))
    nm.load_state_dict(ours2.state_dict(), strict=True)
    check(True, "our state_dict loads into NeMo with strict=True")
    return pn


def check_features(tol, pad_mode):
    import soundfile as sf

    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor as NemoPre

    print(f"[features] NeMo preprocessor vs features.py (pad_mode {pad_mode})", flush=True)
    cfg = quartznet.load_config(os.path.join(ROOT, "tools/configs/quartznet_5x5.yaml"))["preprocessor"]
    kw = {k: v for k, v in cfg.items() if k != "_target_"}
    nemo_pre = NemoPre(**kw)
    nemo_pre.featurizer.dither = 0.0
    nemo_pre.featurizer.pad_to = 0
    nemo_pre.eval()
    ours = features.AudioToMelSpectrogramPreprocessor.from_config(cfg, pad_mode=pad_mode)
    ours.featurizer.dither = 0.0
    ours.featurizer.pad_to = 0
    ours.eval()
    d_fb = (nemo_pre.featurizer.fb - ours.featurizer.fb).abs().max().item()
    check(d_fb < 1e-7, f"mel filterbank equal to NeMo's buffer (max abs diff {d_fb:.2g})")
    clips = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/audio/*.wav")))
    waves = []
    worst = 0.0
    for p in clips:
        x, sr = sf.read(p, dtype="float32")
        waves.append(x)
        sig = torch.from_numpy(x)[None]
        ln = torch.tensor([len(x)])
        with torch.no_grad():
            fn, ln_n = nemo_pre(input_signal=sig, length=ln)
            fo, ln_o = ours(sig, ln)
        same_len = torch.equal(ln_n, ln_o) and fn.shape == fo.shape
        tv = int(ln_n[0])
        d = (fn[..., :tv] - fo[..., :tv]).abs()
        tail = fo[..., tv:].abs().max().item() if fo.shape[-1] > tv else 0.0
        worst = max(worst, d.max().item())
        check(same_len and d.max().item() < tol and tail == 0.0,
              f"{os.path.basename(p):18s} L={len(x):6d} valid={tv:4d}/{fo.shape[-1]} max|diff| {d.max().item():.3g} mean {d.mean().item():.2g}")
    # one padded batch through both
    L = max(len(w) for w in waves)
    xb = torch.zeros(len(waves), L)
    for i, w in enumerate(waves):
        xb[i, : len(w)] = torch.from_numpy(w)
    lb = torch.tensor([len(w) for w in waves])
    with torch.no_grad():
        fn, ln_n = nemo_pre(input_signal=xb, length=lb)
        fo, ln_o = ours(xb, lb)
    d = (fn - fo).abs().max().item()
    check(torch.equal(ln_n, ln_o) and d < tol, f"padded batch of {len(waves)}: lengths equal, max|diff| {d:.3g} (all frames)")
    return worst


def check_resampler():
    try:
        import torchaudio.functional as AF
    except Exception as e:  # pragma: no cover
        print(f"[resample] torchaudio not importable ({e}); skipped")
        return
    print("[resample] features.Resampler vs torchaudio.functional.resample", flush=True)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 100_003, generator=g)
    for orig, new in ((11, 10), (9, 10), (48000, 16000), (22050, 16000), (8000, 16000)):
        r = features.Resampler(orig, new)
        y = r(x, chunk_frames=997)  # small chunks: exercises the chunk seams
        ref = AF.resample(x, orig, new)
        d = (y - ref).abs().max().item() if y.shape == ref.shape else float("inf")
        # long kernels (22050->16000: 441/320, 1.3k taps) accumulate more float32 rounding
        tol = 1e-5 if max(r.orig, r.new) <= 20 else 2e-4
        check(d < tol, f"{orig}->{new}: shape {tuple(y.shape)} max|diff| {d:.3g} (signal std 1)")


def check_augment():
    print("[augment] spec_augment / spec_cutout", flush=True)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 64, 500, generator=g) + 10.0
    lens = torch.tensor([500, 480, 300, 250, 120, 60, 30, 10])
    y = features.spec_augment(x, lens, 2, 15, 5, 0.05, generator=g)
    z = (y == 0)
    frac = z.float().mean().item()
    check(y.shape == x.shape and 0.0 < frac < 0.6, f"spec_augment masks {frac:.1%} of cells, fill 0")
    # a freq mask covers whole rows, time masks stay inside the valid length
    rows = z.all(2).any(1).sum().item()
    check(rows > 0, f"freq masks span full rows in {rows}/8 utterances")
    beyond = [(z[b].all(0)[lens[b] + 1:]).any().item() for b in range(8) if lens[b] + 1 < 500]
    check(not any(beyond), "time masks never start past the valid length")
    c = features.spec_cutout(x, 5, 120, 50, generator=g)
    check(c.shape == x.shape and (c == 0).any().item(), f"spec_cutout masks {(c == 0).float().mean().item():.1%}")
    # VTLP: identity at alpha 1; a 1 kHz tone's peak moves to ~alpha kHz
    fz = features.FilterbankFeatures(dither=0.0, pad_to=0).eval()
    sr = 16000
    tt = torch.arange(32000) / sr
    tone = torch.sin(2 * torch.pi * 1000 * tt)[None].repeat(3, 1)
    ln = torch.full((3,), 32000)
    f0, _ = fz(tone, ln)
    f1, _ = fz(tone, ln, torch.ones(3))
    d = (f0 - f1).abs().max().item()
    check(d < 1e-3, f"VTLP alpha=1 is the identity (max|diff| {d:.2g})")
    spec = torch.stft(tone, 512, 160, 320, torch.hann_window(320, periodic=False), return_complex=True).abs() ** 2
    w = features.vtlp_warp(spec, torch.tensor([0.9, 1.0, 1.1]))
    peaks = (w.mean(2).argmax(1).float() * 8000 / 256).tolist()
    check(abs(peaks[0] - 900) < 40 and abs(peaks[1] - 1000) < 40 and abs(peaks[2] - 1100) < 40,
          f"VTLP moves a 1 kHz tone to {[round(p) for p in peaks]} Hz for alpha 0.9/1.0/1.1")
    # noise: SNR inside the range for the selected clips, nothing past the length
    x = torch.randn(64, 16000, generator=g) * 0.1
    lens = torch.randint(4000, 16001, (64,), generator=g)
    x = x * (torch.arange(16000)[None] < lens[:, None])
    y = features.add_noise(x, lens, 0.5, (10.0, 20.0), generator=g)
    nz = y - x
    sel = nz.abs().amax(1) > 0
    snr = 10 * torch.log10((x * x).sum(1) / (nz * nz).sum(1).clamp(min=1e-30))
    tail = max(((y[b, lens[b]:]).abs().max().item() if lens[b] < 16000 else 0.0) for b in range(64))
    check(10 < sel.sum().item() < 54 and snr[sel].min() > 9.99 and snr[sel].max() < 20.01 and tail == 0.0,
          f"add_noise: {sel.sum().item()}/64 clips, SNR {snr[sel].min():.1f}..{snr[sel].max():.1f} dB, tail 0")
    r = features.add_reverb(x, lens, 0.5, (0.1, 0.6), generator=g)
    changed = (r - x).abs().amax(1) > 1e-6
    tail = max(((r[b, lens[b]:]).abs().max().item() if lens[b] < 16000 else 0.0) for b in range(64))
    check(10 < changed.sum().item() < 54 and tail == 0.0 and torch.isfinite(r).all().item(),
          f"add_reverb: {changed.sum().item()}/64 clips reverberated, finite, tail 0")


def check_corpus():
    """train_gpu.Corpus: speed copies line up with their clips (tone frequency and length)."""
    import train_gpu

    print("[corpus] speed-perturbed copies in one flat tensor", flush=True)
    sr = 16000
    freqs = [300.0, 700.0, 1500.0]
    lens = [8000, 20000, 12345]
    waves = [np.sin(2 * np.pi * f * np.arange(n) / sr).astype(np.float32) for f, n in zip(freqs, lens)]
    c = train_gpu.Corpus(waves, [0.9, 1.0, 1.1], "cpu", lambda m: None)
    ok = True
    for si, s in enumerate(c.speeds):
        for i, (f, n) in enumerate(zip(freqs, lens)):
            x, xl = c.batch(torch.tensor([si]), torch.tensor([i]), 40000)
            ln = int(xl[0])
            spec = torch.fft.rfft(x[0, :ln]).abs()
            peak = spec.argmax().item() * sr / ln
            exp_len = -(-n * 10 // round(s * 10))
            good = abs(ln - exp_len) <= 1 and abs(peak - f * s) < 0.02 * f * s and x[0, ln:].abs().max().item() == 0.0
            ok &= good
            if not good:
                print(f"    speed {s} clip {i}: len {ln} (expected {exp_len}), peak {peak:.0f} Hz (expected {f * s:.0f})")
    check(ok, "each clip's speed copy has length ceil(L/f) and its tone at f x the original (f = 0.9, 1.0, 1.1)")
    b = train_gpu.make_batches(np.array([16000, 17000, 30000, 31000, 90000, 5000]), 64000, 8000, 512,
                               np.random.default_rng(0))
    seen = sorted(int(i) for sel, _ in b for i in sel)
    fits = all(pad >= max([16000, 17000, 30000, 31000, 90000, 5000][i] for i in sel) for sel, pad in b)
    check(seen == list(range(6)) and fits, f"make_batches covers every clip once, pads fit: {[(list(map(int, s)), p) for s, p in b]}")
    import common

    for a, bb, d in (("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("same", "same", 0), ("flaw", "lawn", 2),
                     ("intention", "execution", 5), ("a" * 100, "a" * 99 + "b", 1), ("ab" * 50, "ba" * 50, 2),
                     ("the cat sat".split(), "the dog sat down".split(), 2)):
        got = (common.edit_distance(a, bb), common.edit_distance(bb, a))
        check(got == (d, d), f"edit distance {a!r} {bb!r} = {got[0]} both ways (expected {d})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="*", default=["tools/configs/quartznet_5x5.yaml", "tools/configs/quartznet_tiny.yaml"])
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--feature-tol", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args()
    quiet_nemo()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if not args.skip_model:
        for c in args.configs:
            check_model(os.path.join(ROOT, c), args.tol, args.batch, args.seed)
    pm = nemo_pad_mode()
    check_features(args.feature_tol, pm)
    check_resampler()
    check_augment()
    check_corpus()
    print(f"\n{'ALL CHECKS PASSED' if not FAIL else str(len(FAIL)) + ' CHECK(S) FAILED'}")
    sys.exit(1 if FAIL else 0)


if __name__ == "__main__":
    main()
