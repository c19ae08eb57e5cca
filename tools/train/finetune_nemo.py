#!/usr/bin/env python3
"""Short fine-tune of a QuartzNet .nemo with NeMo's OWN training loop (lightning Trainer, CPU),
so the shipped model is also trained by NeMo itself. Run with /opt/venvs/nemo3/bin/python.

  /opt/venvs/nemo3/bin/python tools/train/finetune_nemo.py --nemo models/qn5x5-tts.nemo \\
      --bundle .devdata --out models/qn5x5-tts-ft.nemo --steps 300 --batch 8 --lr 0.002

* data: the bundle's manifest(s) -> NeMo JSON-lines manifests (absolute audio_filepath, duration,
  text normalised to the model's labels) in --work, with train_gpu.py's roles (common.py): train
  manifest -> training, dev manifest -> validation, other manifests (held-out voices) unused; no
  training clip shares a text with dev or held-out clips;
* model: ``EncDecCTCModel.restore_from(--nemo)``; its spec_augment / optim sections (to_nemo.py
  writes them) are used, with --lr / --steps overriding; NeMo's Novograd + CosineAnnealing;
* resumable: every --save-every steps (and at the end) the model is saved to --out with
  ``save_to``; a later run with ``--nemo <that file>`` continues from those weights (the LR
  schedule restarts; optimiser moments are not kept in a .nemo);
* --max-utts / --max-duration limit the data (CPU time: 5x5 runs at roughly 5 audio-seconds per
  second on 2 cores, so 300 steps of 8 x 4 s clips take about 30 minutes).
"""
import argparse
import json
import logging as pylogging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402


def quiet_nemo():
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(pylogging.WARNING)


def write_manifests(bundle, labels, work, dev_frac, seed, max_utts, max_duration):
    import soundfile as sf

    sys.path.insert(0, HERE)
    from train_gpu import dev_by_text  # same split rule as the GPU trainer

    recs = common.read_bundle(bundle)
    if max_utts:
        recs = recs[:max_utts]
    rows = []
    for r in recs:
        if not os.path.exists(r["_abspath"]):
            continue
        text, _ = common.normalize_text(r["_text"], labels)
        if not text:
            continue
        info = sf.info(r["_abspath"])
        dur = info.frames / info.samplerate
        if dur > max_duration or dur < 0.3:
            continue
        rows.append({"audio_filepath": os.path.abspath(r["_abspath"]), "duration": round(dur, 4), "text": text,
                     "_split": r["_split"]})
    has_dev = any(r["_split"] == "dev" for r in rows)
    dev = [r for r in rows if (r["_split"] == "dev" if has_dev else
                               r["_split"] == "train" and dev_by_text(r["text"], dev_frac, seed))]
    held = {r["text"] for r in rows if r["_split"] != "train"} | {r["text"] for r in dev}
    train = [r for r in rows if r["_split"] == "train" and r not in dev and r["text"] not in held]
    os.makedirs(work, exist_ok=True)
    paths = {}
    for name, part in (("train", train), ("dev", dev)):
        p = os.path.join(work, f"{name}_manifest.json")
        with open(p, "w") as f:
            for r in part:
                f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n")
        paths[name] = p
    print(f"manifests: train {len(train)} clips ({sum(r['duration'] for r in train) / 3600:.2f} h), "
          f"dev {len(dev)} clips -> {work}", flush=True)
    return paths, len(train), len(dev)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nemo", required=True, help="start from this .nemo (to_nemo.py output or an earlier --out)")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/finetune_nemo")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--warmup-ratio", type=float, default=0.05)
    ap.add_argument("--dev-frac", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-utts", type=int, default=0)
    ap.add_argument("--max-duration", type=float, default=16.7)
    ap.add_argument("--val-every", type=int, default=100, help="validate every N steps")
    ap.add_argument("--val-batches", type=int, default=20)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    import torch
    import lightning.pytorch as pl
    from omegaconf import OmegaConf, open_dict
    from nemo.collections.asr.models import EncDecCTCModel

    quiet_nemo()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = EncDecCTCModel.restore_from(args.nemo, map_location="cpu")
    labels = list(model.decoder.vocabulary)
    paths, ntr, ndev = write_manifests(args.bundle, labels, args.work, args.dev_frac, args.seed, args.max_utts,
                                       args.max_duration)
    if ntr == 0:
        raise SystemExit("no training clips")

    class SaveNemo(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            s = trainer.global_step
            if args.save_every and s > 0 and s % args.save_every == 0:
                pl_module.save_to(args.out)
                print(f"step {s}: saved {args.out}", flush=True)

    class Progress(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            s = trainer.global_step
            if s % 10 == 0 or s <= 2:
                loss = outputs["loss"].item() if isinstance(outputs, dict) and "loss" in outputs else float("nan")
                lr = trainer.optimizers[0].param_groups[0]["lr"]
                print(f"step {s} loss {loss:.4f} lr {lr:.6f} t {time.time() - t0:.0f}s", flush=True)

        def on_validation_end(self, trainer, pl_module):
            m = {k: float(v) for k, v in trainer.callback_metrics.items() if "val" in k}
            print(f"validation at step {trainer.global_step}: {m}", flush=True)

    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=args.steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, val_check_interval=min(args.val_every, max(1, ntr // args.batch)),
        check_val_every_n_epoch=None if args.val_every else 1, limit_val_batches=args.val_batches,
        num_sanity_val_steps=0, callbacks=[SaveNemo(), Progress()], log_every_n_steps=10,
    )
    model.set_trainer(trainer)
    common_ds = {"sample_rate": 16000, "labels": labels, "num_workers": 0, "pin_memory": False,
                 "trim_silence": False}
    model.setup_training_data(OmegaConf.create({**common_ds, "manifest_filepath": paths["train"],
                                                "batch_size": args.batch, "shuffle": True,
                                                "max_duration": args.max_duration}))
    if ndev:
        model.setup_validation_data(OmegaConf.create({**common_ds, "manifest_filepath": paths["dev"],
                                                      "batch_size": args.batch, "shuffle": False}))
    optim = OmegaConf.create(OmegaConf.to_container(model.cfg.get("optim")) if model.cfg.get("optim") else {})
    with open_dict(optim):
        optim.name = optim.get("name", "novograd")
        optim.lr = args.lr
        optim.setdefault("betas", [0.8, 0.5])
        optim.setdefault("weight_decay", 0.001)
        optim.sched = {"name": "CosineAnnealing", "warmup_ratio": args.warmup_ratio, "min_lr": args.lr * 0.01,
                       "max_steps": args.steps}
    model.setup_optimization(optim_config=optim)
    with open_dict(model.cfg):
        model.cfg.optim = optim
        model.cfg.train_ds.manifest_filepath = None  # the .nemo must not point at a temp file
        model.cfg.validation_ds.manifest_filepath = None
    print(f"fine-tuning {args.nemo}: {args.steps} steps, batch {args.batch}, {optim.name} lr {args.lr}", flush=True)
    trainer.fit(model)
    model.eval()
    model.save_to(args.out)
    print(f"saved {args.out} after {trainer.global_step} steps, {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
