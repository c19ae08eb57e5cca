#!/usr/bin/env python3
"""Train a QuartzNet (NeMo EncDecCTCModel layout) on a bundle of Opus clips, under a HARD
wall-clock budget, on one GPU (or on CPU for smoke tests). No NeMo / omegaconf needed: torch,
numpy, PyYAML and soundfile (carried as wheels, see fetch_wheels.sh).

  PYTHONUNBUFFERED=1 python3 tools/train/train_gpu.py --bundle .devdata \
      --config tools/configs/quartznet_5x5.yaml --minutes 8 --out $OUT

What it does
  1. reads the bundle's manifest(s) (common.py: jsonl/json/tsv/csv, relative paths), normalises the
     texts to the 28 labels, decodes every clip once (soundfile, threads) to 16 kHz float32;
  2. roles from the manifests' names (common.manifest_split): train_manifest -> training,
     dev_manifest -> dev (checkpoint choice), others (e.g. heldout_manifest: an unseen voice) ->
     evaluation sets that are only reported; without a dev manifest, ~--dev-frac of the DISTINCT
     training texts; training clips that share a text with dev/eval clips are dropped;
  3. keeps all audio on the device in one flat tensor, with speed-perturbed copies made once at
     start (--speeds, sinc resampling, NeMo-style: speed f -> length / f);
  4. each epoch draws a speed per clip, sorts by length into buckets (--bucket-s quantum), makes
     batches of about --batch-seconds of padded audio (constant shape per bucket), shuffles them;
  5. per batch on the device: gather -> [synthetic reverb, coloured noise] -> NeMo 3.0 mel
     frontend (dither, [VTLP warp of the power spectrum]) -> [SpecAugment / SpecCutout] ->
     QuartzNet under bf16 autocast -> CTC loss in fp32 (blank = last index) normalised per target
     character -> NovoGrad (NeMo's, foreach) or AdamW. [..] = augmentation, on from --aug-start
     of the training time (the first steps get clean audio: faster start of CTC alignment);
  6. LR: linear warmup over --warmup of the training TIME, then cosine to --min-lr, all on the
     wall clock, so the schedule ends exactly when the budget does;
  7. evaluates greedy WER/CER on dev at epoch ends (at most every --eval-every-s) and at the end,
     snapshots the weights into --out each time (a killed run still leaves usable files), and
     stops cleanly --reserve-s before the --minutes deadline (measured from process start).

Outputs (--out; at most 6 files, each < 16 MiB):
  model_weights.part1.pt, model_weights.part2.pt   fp32 state_dict of the FINAL model, split in two
      (keys exactly NeMo EncDecCTCModel's, preprocessor buffers included: merge the two dicts and
      load with strict=True; to_nemo.py does this);
  best_weights_fp16.pt   fp16 copy of the best-dev-WER snapshot, only when it is not the final one;
  train_log.txt          every step (loss, lr, seconds, throughput) and every dev evaluation;
  dev_transcripts.txt    reference / hypothesis of the final evaluation (dev, then each eval set);
  summary.json           settings, data, timing, throughput, dev WER/CER history, files.
"""
from __future__ import annotations

import time

T_START = time.time()  # the budget counts from here (before the heavy imports)

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import features  # noqa: E402
import quartznet  # noqa: E402

SR = 16000


# --------------------------------------------------------------------------------------------
# logging


class Log:
    def __init__(self, out_dir):
        self.f = open(os.path.join(out_dir, "train_log.txt"), "a", buffering=1)

    def __call__(self, msg, echo=True):
        line = f"[{time.time() - T_START:7.1f}s] {msg}"
        self.f.write(line + "\n")
        if echo:
            print(line, flush=True)


# --------------------------------------------------------------------------------------------
# data


def decode_all(recs, threads, log):
    import soundfile as sf

    def load(r):
        try:
            x, sr = sf.read(r["_abspath"], dtype="float32", always_2d=True)
            return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0], sr, None
        except Exception as e:  # keep going; report
            return None, 0, f"{r['_abspath']}: {e}"

    t = time.time()
    with ThreadPoolExecutor(max_workers=threads) as ex:
        res = list(ex.map(load, recs, chunksize=16))
    errs = [e for _, _, e in res if e]
    for e in errs[:5]:
        log(f"decode error: {e}")
    log(f"decoded {len(recs) - len(errs)}/{len(recs)} clips in {time.time() - t:.1f}s ({threads} threads)")
    return res


def to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == SR:
        return x
    r = features.Resampler(sr, SR)
    return r(torch.from_numpy(x)).numpy()


def dev_by_text(text: str, frac: float, seed: int) -> bool:
    h = hashlib.sha1(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < frac


class Corpus:
    """All waveforms (every speed) in ONE flat device tensor + per (speed, clip) offsets/lengths."""

    def __init__(self, waves, speeds, device, log, gap=64):
        self.speeds = list(speeds)
        self.n = len(waves)
        lens0 = np.array([len(w) for w in waves], dtype=np.int64)
        # speed 1.0 flat array with `gap` zeros between clips (keeps resampling filters from
        # mixing neighbouring clips)
        offs0 = np.zeros(self.n, dtype=np.int64)
        offs0[1:] = np.cumsum(lens0 + gap)[:-1]
        total0 = int(lens0.sum() + gap * self.n)
        flat0 = np.zeros(total0, dtype=np.float32)
        for i, w in enumerate(waves):
            flat0[offs0[i]: offs0[i] + len(w)] = w
        flat0_t = torch.from_numpy(flat0).to(device)
        parts, offs, lens, base = [], [], [], 0
        for s in self.speeds:
            if abs(s - 1.0) < 1e-9:
                fl, o, ln = flat0_t, offs0, lens0
            else:
                orig, new = features.speed_ratio(s)
                rs = features.Resampler(orig, new, device=device)
                fl = rs(flat0_t)
                o = -(-offs0 * new // orig)  # ceil
                ln = np.minimum(-(-lens0 * new // orig), len(fl) - o)
            parts.append(fl)
            offs.append(o + base)
            lens.append(ln)
            base += len(fl)
        self.flat = torch.cat(parts) if len(parts) > 1 else parts[0]
        del parts, flat0_t
        self.offs = np.stack(offs)  # [S, N]
        self.lens = np.stack(lens)  # [S, N]
        self.offs_t = torch.from_numpy(self.offs).to(device)
        self.lens_t = torch.from_numpy(self.lens).to(device)
        self.device = device
        log(f"audio on {device}: {self.flat.numel() / SR / 3600:.2f} h in {len(self.speeds)} speed(s) "
            f"{self.speeds}, {self.flat.numel() * 4 / 2**30:.2f} GiB")

    def batch(self, speed_idx: torch.Tensor, clip_idx: torch.Tensor, pad_len: int):
        """-> ([B, pad_len] float32 audio zero-padded, [B] lengths)."""
        offs = self.offs_t[speed_idx, clip_idx]
        lens = torch.clamp(self.lens_t[speed_idx, clip_idx], max=pad_len)
        ar = torch.arange(pad_len, device=self.device)
        pos = (offs[:, None] + ar[None, :]).clamp_(max=self.flat.numel() - 1)
        x = self.flat[pos]
        x = x.masked_fill(ar[None, :] >= lens[:, None], 0.0)
        return x, lens


def make_batches(lengths, batch_samples, quantum, max_batch, rng: np.random.Generator):
    """Bucket by padded length (multiples of `quantum` samples); constant batch size per bucket;
    leftovers move up to the next bucket. Returns a shuffled list of (indices, pad_len)."""
    keys = -(-lengths // quantum)
    out = []
    carry = np.zeros(0, dtype=np.int64)
    carry_pad = 0
    for k in np.unique(keys):
        if len(carry) and k * quantum > 1.25 * carry_pad:  # next bucket much longer: flush leftovers
            out.append((carry, carry_pad))
            carry = np.zeros(0, dtype=np.int64)
        items = np.where(keys == k)[0]
        items = np.concatenate([carry, rng.permutation(items)])
        pad = int(k * quantum)
        B = int(min(max_batch, max(1, batch_samples // pad)))
        nfull = len(items) // B
        for j in range(nfull):
            out.append((items[j * B:(j + 1) * B], pad))
        carry = items[nfull * B:]
        carry_pad = pad
    if len(carry):
        out.append((carry, int(max(lengths[carry].max(), 1) + quantum - 1) // quantum * quantum))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


# --------------------------------------------------------------------------------------------
# optimisers


class Novograd(torch.optim.Optimizer):
    """NeMo's Novograd (nemo/core/optim/novograd.py; grad_averaging=False, amsgrad=False) with
    foreach ops and no host syncs: per-tensor second moment of the gradient NORM,
    v = g^2 at the first step, then v = b2 v + (1-b2) |g|^2; m = b1 m + (g / (sqrt(v)+eps) + wd p);
    p -= lr m."""

    def __init__(self, params, lr=0.01, betas=(0.8, 0.5), eps=1e-8, weight_decay=0.001):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            grads = [p.grad for p in ps]
            b1, b2 = g["betas"]
            st = [self.state[p] for p in ps]
            first = "exp_avg" not in st[0]
            if first:
                for s, p in zip(st, ps):
                    s["exp_avg"] = torch.zeros_like(p)
                    s["exp_avg_sq"] = torch.zeros((), device=p.device, dtype=torch.float32)
                    s["step"] = 0
            for s in st:
                s["step"] += 1
            m = [s["exp_avg"] for s in st]
            v = [s["exp_avg_sq"] for s in st]
            norms = torch._foreach_norm(grads)
            sq = torch._foreach_mul(norms, norms)
            if first:
                torch._foreach_copy_(v, sq)
            else:
                torch._foreach_mul_(v, b2)
                torch._foreach_add_(v, sq, alpha=1.0 - b2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, g["eps"])
            upd = torch._foreach_div(grads, denom)
            if g["weight_decay"]:
                torch._foreach_add_(upd, ps, alpha=g["weight_decay"])
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, upd)
            torch._foreach_add_(ps, m, alpha=-g["lr"])


def save_optim_state(opt, model, out_dir, step, momentum=False, name="optim_state.pt"):
    """NovoGrad's resumable state by parameter NAME: step count, per-tensor second moment of the
    gradient norm (a scalar each) and, if asked, the momentum in fp16. None for other optimisers."""
    if not isinstance(opt, Novograd):
        return None
    st = {"kind": "novograd", "steps": step, "v": {}, "m": {}, "n": {}}
    for n, p in model.named_parameters():
        s = opt.state.get(p, {})
        if "exp_avg_sq" in s:
            st["v"][n] = float(s["exp_avg_sq"])
            st["n"][n] = int(s["step"])
            if momentum:
                st["m"][n] = s["exp_avg"].detach().to("cpu", torch.float16)
    tmp = os.path.join(out_dir, name + ".tmp")
    torch.save(st, tmp)
    os.replace(tmp, os.path.join(out_dir, name))
    return name, os.path.getsize(os.path.join(out_dir, name))


def load_optim_state(opt, model, path, log):
    st = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(opt, Novograd) or st.get("kind") != "novograd":
        log(f"optimiser state {path} ignored (kind {st.get('kind')}, optimiser {type(opt).__name__})")
        return 0
    n_v = n_m = 0
    params = dict(model.named_parameters())
    if set(st["v"]) != set(params):
        log(f"optimiser state {path}: parameter names differ from the model's; ignored")
        return 0
    for n, p in params.items():
        s = opt.state[p]
        s["exp_avg_sq"] = torch.tensor(st["v"][n], device=p.device, dtype=torch.float32)
        s["step"] = st["n"][n]
        m = st["m"].get(n)
        s["exp_avg"] = m.to(p.device, torch.float32) if m is not None else torch.zeros_like(p)
        n_v += 1
        n_m += m is not None
    log(f"optimiser state from {path}: {n_v} second moments, {n_m} momenta, {st['steps']} steps before")
    return int(st["steps"])


class StageTimer:
    """Per-stage wall time of a few steps (synchronising the device at each mark)."""

    def __init__(self, device, steps):
        self.device, self.steps, self.tot, self.n, self.on, self.t = device, steps, {}, 0, False, 0.0

    def start(self, step):
        self.on = 3 <= step < 3 + self.steps
        if self.on:
            self._sync()
            self.t = time.perf_counter()

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def mark(self, name):
        if self.on:
            self._sync()
            t = time.perf_counter()
            self.tot[name] = self.tot.get(name, 0.0) + t - self.t
            self.t = t

    def end(self):
        if self.on:
            self.n += 1

    def report(self):
        if not self.n:
            return None
        total = sum(self.tot.values())
        return {"steps": self.n, "ms_per_step": 1000 * total / self.n,
                "stages_ms": {k: 1000 * v / self.n for k, v in self.tot.items()},
                "stages_share": {k: v / total for k, v in self.tot.items()}}


# --------------------------------------------------------------------------------------------
# model helpers


def encoded_lengths(model: quartznet.QuartzNet, feat_len: torch.Tensor) -> torch.Tensor:
    """The encoder's length arithmetic alone (what CTC sees as input lengths)."""
    lens = feat_len.clone()
    for blk in model.encoder.encoder:
        for layer in blk.mconv:
            if isinstance(layer, quartznet.MaskedConv1d):
                lens = quartznet._seq_len_after(lens, layer.conv)
    return lens


def save_weights(model, out_dir, tag="model_weights", parts=2):
    """fp32 state dict in `parts` files (atomic replace). Returns [(name, bytes)]."""
    sd = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    res = []
    for i, part in enumerate(quartznet.split_state_dict(sd, parts), 1):
        name = f"{tag}.part{i}.pt"
        tmp = os.path.join(out_dir, name + ".tmp")
        torch.save(part, tmp)
        os.replace(tmp, os.path.join(out_dir, name))
        res.append((name, os.path.getsize(os.path.join(out_dir, name))))
    return res


def save_fp16(sd_cpu, out_dir, name="best_weights_fp16.pt"):
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in sd_cpu.items()}
    tmp = os.path.join(out_dir, name + ".tmp")
    torch.save(half, tmp)
    os.replace(tmp, os.path.join(out_dir, name))
    return name, os.path.getsize(os.path.join(out_dir, name))


@torch.no_grad()
def evaluate(model, corpus, dev_idx, dev_texts, labels, batch_samples, quantum, device, max_batch):
    model.eval()
    if len(dev_idx) == 0:
        return {"wer": float("nan"), "cer": float("nan")}, []
    sp1 = corpus.speeds.index(1.0)
    lens = corpus.lens[sp1, dev_idx]
    order = np.argsort(lens, kind="stable")
    padded = -(-lens // quantum) * quantum
    hyps = [""] * len(dev_idx)
    i = 0
    while i < len(order):
        j = i + 1  # sorted ascending: the newest clip is the longest of the batch
        while j < len(order) and j - i < max_batch and (j - i + 1) * padded[order[j]] <= batch_samples:
            j += 1
        sel = order[i:j]
        pad = int(padded[sel].max())
        ci = torch.as_tensor(dev_idx[sel], device=device)
        si = torch.full_like(ci, sp1)
        x, xl = corpus.batch(si, ci, pad)
        feats, fl = model.preprocessor(x, xl)
        lp, ol = model(feats, fl)
        for k, h in zip(sel, quartznet.greedy_decode(lp, ol, labels)):
            hyps[k] = h
        i = j
    model.train()
    return common.error_rates(dev_texts, hyps), hyps


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, nargs="+",
                    help="directory with audio + manifest(s); several: their records are pooled (e.g. the two "
                         "halves of a two-call carry, .devdata and .devdata_b)")
    ap.add_argument("--manifest", nargs="*", help="manifest file(s) in the bundle (default: all found)")
    ap.add_argument("--config", default=os.path.join(HERE, "..", "configs", "quartznet_5x5.yaml"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=8.0, help="HARD wall-clock budget from process start")
    ap.add_argument("--reserve-s", type=float, default=None, help="kept for the final eval+save (default: auto)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    ap.add_argument("--optim", default="novograd", choices=["novograd", "adamw"])
    ap.add_argument("--lr", type=float, default=None, help="peak LR (default novograd 0.02, adamw 3e-3)")
    ap.add_argument("--betas", type=float, nargs=2, default=None, help="default novograd 0.8 0.5, adamw 0.9 0.98")
    ap.add_argument("--wd", type=float, default=None, help="weight decay (default novograd 1e-3, adamw 1e-3)")
    ap.add_argument("--warmup", type=float, default=0.06, help="warmup, fraction of the training time")
    ap.add_argument("--min-lr", type=float, default=0.0, help="final LR as a fraction of the peak")
    ap.add_argument("--clip", type=float, default=0.0, help="grad-norm clip (0: off)")
    ap.add_argument("--batch-seconds", type=float, default=600.0, help="padded audio seconds per batch")
    ap.add_argument("--max-batch", type=int, default=512)
    ap.add_argument("--bucket-s", type=float, default=0.5, help="padded-length quantum (s)")
    ap.add_argument("--speeds", type=float, nargs="*", default=[0.9, 1.0, 1.1])
    ap.add_argument("--freq-masks", type=int, default=2)
    ap.add_argument("--freq-width", type=int, default=15)
    ap.add_argument("--time-masks", type=int, default=5)
    ap.add_argument("--time-width", type=float, default=0.05, help="< 1: fraction of the length; else frames")
    ap.add_argument("--cutout", type=int, nargs=3, default=[0, 120, 50], metavar=("RECTS", "TIME", "FREQ"),
                    help="NeMo SpecCutout (quartznet_15x5.yaml: 5 120 50); 0 rects = off")
    ap.add_argument("--aug-start", type=float, default=0.1,
                    help="augmentation (SpecAugment, noise, reverb, VTLP) from this fraction of the training time")
    ap.add_argument("--noise-prob", type=float, default=0.2, help="share of clips with added coloured noise")
    ap.add_argument("--snr", type=float, nargs=2, default=[15.0, 40.0], help="noise SNR range (dB)")
    ap.add_argument("--reverb-prob", type=float, default=0.1, help="share of clips with synthetic reverb")
    ap.add_argument("--rt60", type=float, nargs=2, default=[0.1, 0.6], help="reverb RT60 range (s)")
    ap.add_argument("--vtlp-prob", type=float, default=0.5, help="share of clips with VTLP frequency warping")
    ap.add_argument("--vtlp", type=float, default=0.1, help="VTLP factor range 1 +- this")
    ap.add_argument("--dither", type=float, default=1e-5)
    ap.add_argument("--dropout", type=float, default=None, help="override the config's dropout")
    ap.add_argument("--dev-frac", type=float, default=0.03)
    ap.add_argument("--dev-max", type=int, default=500)
    ap.add_argument("--min-duration", type=float, default=0.3)
    ap.add_argument("--max-duration", type=float, default=24.0)
    ap.add_argument("--eval-every-s", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=min(32, (os.cpu_count() or 4)))
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke tests)")
    ap.add_argument("--max-utts", type=int, default=0, help="use only this many clips (smoke tests)")
    ap.add_argument("--init", nargs="*", help="start from these state-dict file(s) (e.g. the two parts, or the "
                    "fp16 file of shipped_weights.py); fp16 is loaded into fp32")
    ap.add_argument("--optim-state", help="resume the optimiser from this optim_state.pt (written by an earlier run)")
    ap.add_argument("--save-momentum", action="store_true",
                    help="also save NovoGrad's momentum (fp16, 13 MiB for 5x5) in optim_state.pt; by default only "
                         "the per-tensor second moments and the step count (a few kB): with beta1 0.8 the momentum "
                         "is forgotten within ~20 steps, the second moments are what a fresh start must re-learn")
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="time the stages of STEPS steps (after 3 warm-up steps; synchronising, so slower) and "
                         "log the breakdown (also in summary.json)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the model's forward (dynamic shapes), guarded: falls back to eager if "
                         "torch.compile is missing or the first compiled step fails")
    ap.add_argument("--device-lengths", action="store_true",
                    help="pass the CTC lengths as device tensors (the old way: one device->host sync per step)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="cuDNN autotuning per shape (the bucketed batches have ~30 shapes)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = Log(args.out)
    deadline = T_START + 60.0 * args.minutes
    log(f"train_gpu.py {' '.join(sys.argv[1:])}")
    dev_name = args.device
    if dev_name == "auto":
        dev_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev_name)
    prec = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[prec]
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    log(f"torch {torch.__version__} on {device} ({gpu_name}), precision {prec}, python {platform.python_version()}")
    if device.type == "cuda":
        # variable shapes; 1x1 convs are matmuls anyway. --cudnn-benchmark: autotune the depthwise
        # convs once per bucket shape (~30 shapes)
        torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
        # training matmuls/convs run in bf16 under autocast; what stays fp32 (mel filterbank,
        # evaluation) keeps full fp32 precision, like NeMo's frontend
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    summary = {"status": "starting", "args": vars(args), "device": str(device), "device_name": gpu_name,
               "torch": torch.__version__, "precision": prec}

    def write_summary():
        tmp = os.path.join(args.out, "summary.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=1, default=str)
        os.replace(tmp, os.path.join(args.out, "summary.json"))

    # ---- config / model
    cfg = quartznet.load_config(args.config)
    if args.dropout is not None:
        for b in cfg["encoder"]["jasper"]:
            b["dropout"] = args.dropout
    labels = quartznet.labels_of(cfg)
    model = quartznet.QuartzNet(cfg).to(device)
    model.preprocessor.featurizer.dither = args.dither
    model.preprocessor.featurizer.pad_to = 0
    if args.init:
        sd = quartznet.load_split_state_dict(args.init)
        dts = sorted(set(str(v.dtype).replace("torch.", "") for v in sd.values() if v.is_floating_point()))
        model.load_state_dict(sd, strict=True)  # copies into the fp32 parameters and buffers
        log(f"initialised from {args.init} ({'/'.join(dts)})")
    nparams = quartznet.count_params(model)
    log(f"model {cfg.get('name', os.path.basename(args.config))}: {nparams:,} parameters, "
        f"{len(cfg['encoder']['jasper'])} blocks, {len(labels)} labels + blank (index {len(labels)})")

    # ---- data
    recs = [r for b in args.bundle for r in common.read_bundle(b, args.manifest)]
    if args.max_utts:
        recs = recs[: args.max_utts]
    log(f"{len(recs)} manifest records from {sorted(set(r['_manifest'] for r in recs))}")
    dropped_chars = 0
    for r in recs:
        r["_norm"], d = common.normalize_text(r["_text"], labels)
        dropped_chars += d
    res = decode_all(recs, args.threads, log)
    waves, texts, splits, skipped = [], [], [], {"decode": 0, "short": 0, "long": 0, "empty_text": 0, "ctc": 0}
    lab_idx = {c: i for i, c in enumerate(labels)}
    for r, (x, sr, err) in zip(recs, res):
        if err or x is None:
            skipped["decode"] += 1
            continue
        x = to_16k(np.ascontiguousarray(x, dtype=np.float32), sr)
        dur = len(x) / SR
        if not r["_norm"]:
            skipped["empty_text"] += 1
            continue
        if dur < args.min_duration:
            skipped["short"] += 1
            continue
        if dur > args.max_duration:
            skipped["long"] += 1
            continue
        waves.append(x)
        texts.append(r["_norm"])
        splits.append(r["_split"])
    del res
    # CTC feasibility at speed 1.0 (encoded frames >= chars + repeats); only training clips are dropped
    lens0 = torch.tensor([len(w) for w in waves])
    enc0 = encoded_lengths(model, model.preprocessor.featurizer.get_seq_len(lens0)).numpy()
    need = np.array([len(t) + sum(1 for a, b in zip(t, t[1:]) if a == b) for t in texts])
    keep = (enc0 >= need) | np.array([sp != "train" for sp in splits])
    skipped["ctc"] = int((~keep).sum())
    waves = [w for w, k in zip(waves, keep) if k]
    texts = [t for t, k in zip(texts, keep) if k]
    splits = [s for s, k in zip(splits, keep) if k]
    need = need[keep]
    n = len(waves)
    if n < 2:
        raise SystemExit(f"not enough usable clips ({n}); skipped {skipped}")
    # dev split: the bundle's own (dev manifest / split field), else a hash of the distinct texts
    splits = np.array(splits, dtype=object)
    if (splits == "dev").any():
        is_dev = splits == "dev"
        how = "bundle dev manifest/split"
    else:
        is_dev = np.array([sp == "train" and dev_by_text(t, args.dev_frac, args.seed) for sp, t in zip(splits, texts)])
        how = f"{args.dev_frac:.0%} of distinct training texts"
    dev_all = np.where(is_dev)[0]
    if len(dev_all) > args.dev_max:
        dev_all = np.sort(rng.choice(dev_all, args.dev_max, replace=False))
    if len(dev_all) == 0:
        dev_all = np.array([n - 1])
    eval_sets = {}
    for name in sorted(set(sp for sp in splits if str(sp).startswith("eval:"))):
        eval_sets[name[5:]] = np.where(splits == name)[0].astype(np.int64)
    held_texts = set(texts[i] for i in dev_all)
    for idx in eval_sets.values():
        held_texts.update(texts[i] for i in idx)
    overlap = sum(1 for i in range(n) if splits[i] == "train" and not is_dev[i] and texts[i] in held_texts)
    train_idx = np.array([i for i in range(n) if splits[i] == "train" and not is_dev[i] and texts[i] not in held_texts],
                         dtype=np.int64)
    dev_idx = dev_all.astype(np.int64)
    hours = sum(len(waves[i]) for i in train_idx) / SR / 3600
    dev_min = sum(len(waves[i]) for i in dev_idx) / SR / 60
    ev_desc = ", ".join(f"{k} {len(v)} ({sum(len(waves[i]) for i in v) / SR / 60:.1f} min)" for k, v in eval_sets.items())
    log(f"usable {n} clips; train {len(train_idx)} ({hours:.2f} h), dev {len(dev_idx)} ({dev_min:.1f} min, {how}); "
        f"eval sets (reported only): {ev_desc or 'none'}; {overlap} training clips dropped for sharing a dev/eval "
        f"text; skipped {skipped}; {dropped_chars} non-label chars dropped from texts")
    if len(train_idx) == 0:
        raise SystemExit("no training clips")
    summary["data"] = {"records": len(recs), "usable": n, "train_clips": int(len(train_idx)), "train_hours": hours,
                       "dev_clips": int(len(dev_idx)), "dev_minutes": dev_min, "dev_split": how, "skipped": skipped,
                       "eval_sets": {k: int(len(v)) for k, v in eval_sets.items()}, "train_text_overlap_dropped": overlap,
                       "dropped_chars": dropped_chars}
    # targets
    smax = max(len(t) for t in texts)
    tgt = np.zeros((n, smax), dtype=np.int64)
    tlen = np.zeros(n, dtype=np.int64)
    for i, t in enumerate(texts):
        ids = [lab_idx[c] for c in t]
        tgt[i, : len(ids)] = ids
        tlen[i] = len(ids)
    tgt_t = torch.from_numpy(tgt).to(device)
    tlen_t = torch.from_numpy(tlen).to(device)

    speeds = sorted(set([1.0] + [float(s) for s in args.speeds]))
    corpus = Corpus(waves, speeds, device, log)
    del waves
    sp1 = speeds.index(1.0)
    # feasibility per speed (fall back to 1.0 where a faster copy would be too short for CTC)
    feas = np.zeros((len(speeds), n), dtype=bool)
    enc_np = np.zeros((len(speeds), n), dtype=np.int64)  # CTC input lengths, known on the host
    for si in range(len(speeds)):
        e = encoded_lengths(model, model.preprocessor.featurizer.get_seq_len(torch.from_numpy(corpus.lens[si]))).numpy()
        feas[si] = e >= need
        enc_np[si] = e
    dev_texts = [texts[i] for i in dev_idx]
    write_summary()

    # ---- optimiser
    if args.optim == "novograd":
        lr = args.lr or 0.02
        betas = tuple(args.betas or (0.8, 0.5))
        wd = 1e-3 if args.wd is None else args.wd
        opt = Novograd(model.parameters(), lr=lr, betas=betas, weight_decay=wd)
    else:
        lr = args.lr or 3e-3
        betas = tuple(args.betas or (0.9, 0.98))
        wd = 1e-3 if args.wd is None else args.wd
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=wd,
                                fused=device.type == "cuda")
    log(f"optimiser {args.optim} lr {lr} betas {betas} wd {wd}; warmup {args.warmup:.0%} of the time, cosine to "
        f"{args.min_lr:g}x; batch ~{args.batch_seconds:.0f} s padded audio, bucket {args.bucket_s} s, speeds {speeds}; "
        f"SpecAugment freq {args.freq_masks}x{args.freq_width} time {args.time_masks}x{args.time_width} "
        f"from {args.aug_start:.0%}, cutout {args.cutout}; noise p {args.noise_prob} SNR {args.snr} dB; "
        f"reverb p {args.reverb_prob} RT60 {args.rt60} s; VTLP p {args.vtlp_prob} +-{args.vtlp}")
    scaler = torch.amp.GradScaler("cuda") if (prec == "fp16" and device.type == "cuda") else None
    steps_before = load_optim_state(opt, model, args.optim_state, log) if args.optim_state else 0
    fwd = model.forward_logits
    compiled = False
    if args.compile:
        try:
            model.encoder.mask_cache = False  # one graph: the id()-keyed mask cache breaks it
            fwd = torch.compile(model.forward_logits, dynamic=True)
            compiled = True
            log("torch.compile: model forward compiled lazily (dynamic shapes); eager fallback on failure")
        except Exception as e:
            log(f"torch.compile unavailable ({type(e).__name__}: {e}); eager")
    timer = StageTimer(device, args.profile)
    host_lengths = not args.device_lengths

    batch_samples = int(args.batch_seconds * SR)
    quantum = max(160, int(args.bucket_s * SR) // 160 * 160)
    reserve = args.reserve_s if args.reserve_s is not None else 25.0 if device.type == "cuda" else 10.0
    t_train0 = time.time()
    t_train_end = deadline - reserve
    if t_train_end - t_train0 < 5:
        log(f"WARNING: only {t_train_end - t_train0:.1f}s left for training after setup")
    train_span = max(t_train_end - t_train0, 1e-3)
    log(f"setup took {t_train0 - T_START:.1f}s; training for {train_span:.1f}s (until {t_train_end - T_START:.0f}s), "
        f"reserve {reserve:.0f}s, deadline {deadline - T_START:.0f}s")
    summary.update(status="training", params=nparams, optimiser={"name": args.optim, "lr": lr, "betas": betas, "wd": wd},
                   setup_s=t_train0 - T_START, train_span_s=train_span, evals=[], epochs=[])
    write_summary()

    def lr_at(frac):
        if frac < args.warmup:
            return lr * max(args.min_lr + (1 - args.min_lr) * frac / args.warmup, 0.01)
        p = min(1.0, (frac - args.warmup) / max(1e-9, 1 - args.warmup))
        return lr * (args.min_lr + (1 - args.min_lr) * 0.5 * (1 + math.cos(math.pi * p)))

    step = 0
    epoch = 0
    audio_s_done = 0.0
    last_eval = time.time()
    best = {"wer": float("inf")}
    best_sd = None
    stop = False
    last_print = 0.0
    fz = model.preprocessor.featurizer
    model.train()
    oom_count = 0
    eval_cost = 0.0
    failures = []
    aug_on = True
    while not stop:
        epoch += 1
        # per-clip speed draw
        sp = rng.integers(0, len(speeds), size=n)
        ok = feas[sp, np.arange(n)]
        sp = np.where(ok, sp, sp1)
        tr_sp = sp[train_idx]
        tr_len = corpus.lens[tr_sp, train_idx]
        batches = make_batches(tr_len, batch_samples, quantum, args.max_batch, rng)
        # one host->device upload per epoch (per-batch uploads would add stream syncs)
        cat = np.concatenate([sel for sel, _ in batches]) if batches else np.zeros(0, dtype=np.int64)
        ep_ci = torch.from_numpy(train_idx[cat]).to(device)
        ep_si = torch.from_numpy(tr_sp[cat]).to(device)
        starts = np.concatenate([[0], np.cumsum([len(sel) for sel, _ in batches])])
        ep_t0, ep_audio, ep_steps = time.time(), 0.0, 0
        ep_loss_t = torch.zeros((), device=device)  # summed on the device: no per-step host sync
        ep_tok_t = torch.zeros((), device=device, dtype=torch.long)
        for bi, (sel, pad) in enumerate(batches):
            now = time.time()
            if now >= t_train_end or (args.max_steps and step >= args.max_steps):
                stop = True
                break
            frac = (now - t_train0) / train_span
            cur_lr = lr_at(frac)
            for g in opt.param_groups:
                g["lr"] = cur_lr
            ci = ep_ci[starts[bi]: starts[bi + 1]]
            si = ep_si[starts[bi]: starts[bi + 1]]
            try:
                timer.start(step)
                x, xl = corpus.batch(si, ci, pad)
                timer.mark("gather")
                warp = None
                if aug_on and frac >= args.aug_start:
                    x = features.add_reverb(x, xl, args.reverb_prob, tuple(args.rt60))
                    x = features.add_noise(x, xl, args.noise_prob, tuple(args.snr))
                    if args.vtlp_prob > 0 and args.vtlp > 0:
                        a = 1.0 + args.vtlp * (2 * torch.rand(len(sel), device=device) - 1)
                        warp = torch.where(torch.rand(len(sel), device=device) < args.vtlp_prob, a, torch.ones_like(a))
                timer.mark("wave_aug")
                feats, fl = fz(x, xl, warp)
                timer.mark("frontend")
                if aug_on and frac >= args.aug_start:
                    if args.freq_masks or args.time_masks:
                        tw = args.time_width if args.time_width < 1 else int(args.time_width)
                        feats = features.spec_augment(feats, fl, args.freq_masks, args.freq_width, args.time_masks, tw)
                    if args.cutout[0] > 0:
                        feats = features.spec_cutout(feats, *args.cutout)
                timer.mark("spec_aug")
                y = tgt_t[ci]
                if host_lengths:
                    # CTC lengths as CPU tensors: F.ctc_loss copies its length tensors to the host
                    # (at::ctc_loss: input_lengths.to(kCPU)), a device->host sync per step that
                    # stops the host from queueing the backward pass while the forward runs
                    hsel = cat[starts[bi]: starts[bi + 1]]
                    ol_h = torch.from_numpy(enc_np[tr_sp[hsel], train_idx[hsel]])
                    yl = torch.from_numpy(tlen[train_idx[hsel]])
                else:
                    yl = tlen_t[ci]
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    try:
                        logits, ol = fwd(feats, fl)
                    except Exception as e:
                        if not compiled:
                            raise
                        log(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); eager from now on")
                        fwd, compiled = model.forward_logits, False
                        model.encoder.mask_cache = True
                        logits, ol = fwd(feats, fl)
                timer.mark("model_fwd")
                lp = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # [T, B, C] fp32
                if host_lengths:
                    if step == 0:  # once: the host's lengths are the encoder's
                        assert torch.equal(ol.cpu(), ol_h), "host-side CTC lengths differ from the encoder's"
                    ol = ol_h
                losses = F.ctc_loss(lp, y, ol, yl,
                                    blank=len(labels), reduction="none", zero_infinity=True)
                ntok = int(yl.sum()) if host_lengths else yl.sum()
                loss = losses.sum() / ntok
                timer.mark("ctc_fwd")
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)
                else:
                    loss.backward()
                timer.mark("backward")
                if args.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                timer.mark("optimizer")
                timer.end()
                if args.profile and timer.n == args.profile and not summary.get("profile"):
                    summary["profile"] = dict(timer.report(), batch=f"{len(sel)}x{pad / SR:.1f}s")
                    pr = summary["profile"]
                    log(f"PROFILE {pr['steps']} steps, {pr['ms_per_step']:.1f} ms/step (synchronised): " + ", ".join(
                        f"{k} {v:.1f} ms ({pr['stages_share'][k]:.0%})" for k, v in pr["stages_ms"].items()))
            except torch.OutOfMemoryError:
                oom_count += 1
                opt.zero_grad(set_to_none=True)
                x = feats = logits = lp = losses = loss = None
                torch.cuda.empty_cache()
                batch_samples = int(batch_samples * 0.7)
                log(f"OOM at step {step} (batch {len(sel)} x {pad / SR:.1f}s); batch now {batch_samples / SR:.0f}s")
                break  # rebuild this epoch's batches at the smaller size
            except Exception as e:  # one-shot run: degrade instead of dying
                failures.append(f"step {step}: {type(e).__name__}: {e}")
                log(f"step {step} FAILED: {traceback.format_exc()}")
                opt.zero_grad(set_to_none=True)
                x = feats = logits = lp = losses = loss = None
                if len(failures) > 3:
                    raise
                if aug_on:
                    aug_on = False
                    log("-> augmentation disabled for the rest of the run")
                elif amp_dtype is not None:
                    amp_dtype = None
                    log("-> falling back to fp32")
                else:
                    raise
                continue
            step += 1
            ep_steps += 1
            ep_loss_t += losses.detach().sum()
            ep_tok_t += ntok
            bsec = float(tr_len[sel].sum()) / SR
            audio_s_done += bsec
            ep_audio += bsec
            lv = loss.item() if (step % 10 == 0 or step <= 3) else None  # avoid a sync every step
            if lv is not None:
                el = time.time() - t_train0
                msg = (f"step {step} ep {epoch} b {bi + 1}/{len(batches)} loss {lv:.4f} lr {cur_lr:.5f} "
                       f"B {len(sel)}x{pad / SR:.1f}s t_train {el:.1f}s audio/s {audio_s_done / max(el, 1e-6):.0f}")
                echo = time.time() - last_print > (10 if device.type == "cuda" else 5)
                if echo:
                    last_print = time.time()
                log(msg, echo=echo)
        ep_time = time.time() - ep_t0
        ep_loss = ep_loss_t.item() / max(int(ep_tok_t.item()), 1)
        summary["epochs"].append({"epoch": epoch, "steps": ep_steps, "steps_total": step, "seconds": ep_time,
                                  "audio_s": ep_audio, "loss_per_char": ep_loss, "complete": not stop})
        log(f"epoch {epoch} {'done' if not stop else 'cut'}: {ep_steps} steps, {ep_time:.1f}s, "
            f"{ep_audio / max(ep_time, 1e-6):.0f} audio-s/s, loss/char {ep_loss:.4f}")
        # dev eval at epoch end (rate-limited) and always at the end
        if stop or time.time() - last_eval >= args.eval_every_s:
            te = time.time()
            if device.type == "cuda":
                torch.cuda.synchronize()
            ev_res = {}
            m, hyps = {"wer": float("nan"), "cer": float("nan")}, [""] * len(dev_texts)
            try:
                m, hyps = evaluate(model, corpus, dev_idx, dev_texts, labels, batch_samples, quantum, device,
                                   args.max_batch)
                for name, idx in eval_sets.items():
                    em, eh = evaluate(model, corpus, idx, [texts[i] for i in idx], labels, batch_samples, quantum,
                                      device, args.max_batch)
                    ev_res[name] = (em, eh)
            except Exception as e:  # never lose the weights to an evaluation problem
                failures.append(f"eval at step {step}: {type(e).__name__}: {e}")
                log(f"dev evaluation FAILED: {traceback.format_exc()}")
                model.train()
            eval_cost = time.time() - te
            last_eval = time.time()
            rec = {"epoch": epoch, "step": step, "t_train": time.time() - t_train0, "wer": m["wer"], "cer": m["cer"],
                   "eval_s": eval_cost, "final": stop,
                   "eval_sets": {k: {"wer": v[0]["wer"], "cer": v[0]["cer"]} for k, v in ev_res.items()}}
            summary["evals"].append(rec)
            extra = "".join(f"; {k} WER {v[0]['wer']:.4f} CER {v[0]['cer']:.4f}" for k, v in ev_res.items())
            log(f"DEV epoch {epoch} step {step}: WER {m['wer']:.4f} CER {m['cer']:.4f} ({len(dev_idx)} clips, "
                f"{eval_cost:.1f}s){extra}  e.g. ref '{dev_texts[0][:50]}' hyp '{hyps[0][:50]}'")
            files = save_weights(model, args.out)
            if m["wer"] == m["wer"] and m["wer"] < best["wer"]:
                best = dict(rec)
                best_sd = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
            summary.update(status="training" if not stop else "finishing", steps=step, epochs_run=epoch,
                           best=best, weights=[f for f, _ in files], weights_complete=stop)
            write_summary()
            if stop:
                with open(os.path.join(args.out, "dev_transcripts.txt"), "w") as f:
                    sets = [("dev", m, dev_texts, hyps)] + [(k, v[0], [texts[i] for i in eval_sets[k]], v[1])
                                                            for k, v in ev_res.items()]
                    for name, mm, refs_, hyps_ in sets:
                        f.write(f"=== {name}: WER {mm['wer']:.4f} CER {mm['cer']:.4f} ({len(refs_)} clips)\n\n")
                        for r, h in zip(refs_, hyps_):
                            f.write(f"REF {r}\nHYP {h}\n\n")
                final = rec
            # the reserve must cover one more eval + save
            if args.reserve_s is None and time.time() < t_train_end:
                need_res = 1.5 * eval_cost + 5
                if need_res > reserve:
                    reserve = need_res
                    t_train_end = deadline - reserve
                    log(f"reserve raised to {reserve:.0f}s")

    files = save_weights(model, args.out)
    total_train = time.time() - t_train0
    out_files = [f for f, _ in files]
    try:
        osf = save_optim_state(opt, model, args.out, steps_before + step, momentum=args.save_momentum)
        if osf:
            out_files.append(osf[0])
    except Exception as e:  # never lose the run to this
        failures.append(f"optim state: {type(e).__name__}: {e}")
    if best_sd is not None and best.get("step") != final["step"] and not (best["wer"] >= final["wer"]):
        name, sz = save_fp16(best_sd, args.out)
        out_files.append(name)
        log(f"best dev snapshot (step {best['step']}, WER {best['wer']:.4f}) saved as {name} ({sz / 2**20:.1f} MiB)")
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in out_files}
    summary.update(
        status="done", steps=step, epochs_run=epoch, train_s=total_train, total_s=time.time() - T_START,
        audio_seconds_trained=audio_s_done, throughput_audio_s_per_s=audio_s_done / max(total_train, 1e-6),
        final=final, best=best, weights=out_files, weights_complete=True, file_bytes=sizes, oom=oom_count,
        failures=failures, augmentation_active_at_end=aug_on, precision_at_end=str(amp_dtype or "fp32"),
        weights_format="torch.save dicts; merge model_weights.part1.pt + part2.pt -> NeMo EncDecCTCModel "
                       "state_dict (fp32, strict); best_weights_fp16.pt (if present) is the same keys in fp16",
        frontend={"pad_mode": "zeros (NeMo >= 2.5)", "features": 64, "dither": args.dither},
        steps_before=steps_before, compiled_at_end=compiled,
        labels=labels,
    )
    if device.type == "cuda":
        summary["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    write_summary()
    log(f"done: {step} steps, {epoch} epochs, {audio_s_done / 3600:.2f} h of audio in {total_train:.0f}s "
        f"({audio_s_done / max(total_train, 1e-6):.0f} audio-s/s); final dev WER {final['wer']:.4f} CER {final['cer']:.4f}; "
        f"total {time.time() - T_START:.0f}s of {args.minutes * 60:.0f}s; files {sizes}")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        raise
