#!/usr/bin/env python3
"""Operator count and time of ONE training step of train_gpu.py's pipeline (torch.profiler), on CPU
or CUDA: how many ATen ops (~ kernel launches on a GPU) a step issues, and where the time goes.

  python3 tools/train/profile_ops.py [--config tools/configs/quartznet_5x5.yaml] [--batch 8]
      [--seconds 6] [--device cpu] [--steps 3] [--no-dropout-skip]

Prints: ops per step by phase (forward, backward, optimiser), the top ops by self time, and
steps/s of plain timed steps (after warm-up). Uses random audio, no data set needed.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import features  # noqa: E402
import quartznet  # noqa: E402
from train_gpu import Novograd  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=os.path.join(HERE, "..", "configs", "quartznet_5x5.yaml"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile(dynamic=True) the model's forward")
    ap.add_argument("--no-profile", action="store_true", help="only the timed steps")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = quartznet.QuartzNet(quartznet.load_config(a.config)).to(dev)
    model.train()
    fz = model.preprocessor.featurizer
    opt = Novograd(model.parameters(), lr=1e-3)
    B, L = a.batch, int(a.seconds * 16000)
    x = torch.randn(B, L, device=dev) * 0.1
    xl = torch.full((B,), L, device=dev, dtype=torch.long)
    xl[1::2] = int(L * 0.8)
    y = torch.randint(0, 28, (B, int(a.seconds * 12)), device=dev)
    yl = torch.full((B,), y.shape[1], device=dev, dtype=torch.long)
    amp = torch.bfloat16 if a.bf16 else None
    if a.compile:
        model.encoder.mask_cache = False  # one graph: no id()-keyed cache
    fwd = torch.compile(model.forward_logits, dynamic=True) if a.compile else model.forward_logits

    def step(marks=None):
        xa = features.add_noise(features.add_reverb(x, xl, 0.1, (0.1, 0.6)), xl, 0.2, (15.0, 40.0))
        feats, fl = fz(xa, xl, None)
        feats = features.spec_augment(feats, fl, 2, 15, 5, 0.05)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            logits, ol = fwd(feats, fl)
        lp = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)
        loss = F.ctc_loss(lp, y, ol, yl, blank=28, reduction="none", zero_infinity=True).sum() / yl.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    t = time.perf_counter()
    for _ in range(2):
        step()
    print(f"2 warm-up steps: {time.perf_counter() - t:.1f} s{' (includes compiling)' if a.compile else ''}")
    if a.no_profile:
        return timed(step, a, dev, B)
    from torch.profiler import ProfilerActivity, profile, record_function

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        with record_function("STEP"):
            step()
    ev = prof.key_averages()
    # top-level ATen ops only (an op called from inside another is not a separate launch site)
    total_ops = sum(e.count for e in ev if e.key.startswith("aten::"))
    print(f"config {os.path.basename(a.config)}, batch {B} x {a.seconds:.1f} s, device {dev}, "
          f"{'bf16 autocast' if amp else 'fp32'}")
    print(f"aten op calls in one step (all levels): {total_ops}")
    if dev.type == "cuda":
        k = sum(e.count for e in ev if e.device_type == torch.autograd.DeviceType.CUDA)
        print(f"CUDA kernels in one step: {k}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    timed(step, a, dev, B)


def timed(step, a, dev, B):
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / a.steps
    print(f"timed: {dt * 1000:.0f} ms/step, {1 / dt:.2f} steps/s, {B * a.seconds / dt:.1f} audio-s/s")


if __name__ == "__main__":
    main()
