#!/usr/bin/env python3
"""Trained state dict (train_gpu.py output) -> a genuine NeMo ``.nemo`` (run with
/opt/venvs/nemo3/bin/python), then check it with NeMo's own ``transcribe()``.

  /opt/venvs/nemo3/bin/python tools/train/to_nemo.py \\
      --weights OUT/model_weights.part1.pt OUT/model_weights.part2.pt \\
      --config tools/configs/quartznet_5x5.yaml --out models/quartznet5x5-tts.nemo \\
      --bundle .devdata --check 24 [--real-dev eval/real-dev]

1. builds ``EncDecCTCModel`` from the YAML (labels, preprocessor, encoder, decoder) plus the
   training sections NeMo needs to fine-tune it later (spec_augment, optim, empty train/val
   datasets), loads the merged state dict with ``strict=True`` (fp16 files are cast to fp32);
2. ``model.save_to(--out)``; then ``restore_from`` the file (a real round trip);
3. ``transcribe()`` on up to --check clips of each of the bundle's dev / evaluation sets (e.g.
   dev = training voices, heldout = an unseen voice; the training clips when there is nothing
   else) and prints corpus WER/CER per set, and the agreement of the pure-torch model
   (quartznet.py + features.py) with NeMo on the same files;
4. optionally reports WER/CER on eval/real-dev (reporting only: nothing is tuned on it).

The frontend of NeMo 3.0 (zero STFT padding, floor(L/160) frames) is what train_gpu.py trained
with, so export with ``tools/export_nemo.py ... --pad-mode zeros``.
"""
import argparse
import copy
import json
import logging as pylogging
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402
import quartznet  # noqa: E402

TRAIN_SECTIONS = {
    "spec_augment": {
        "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
        "freq_masks": 2, "time_masks": 5, "freq_width": 15, "time_width": 0.05,
    },
    "train_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 16, "shuffle": True,
                 "max_duration": 24.0, "trim_silence": False, "num_workers": 0, "pin_memory": False},
    "validation_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 16, "shuffle": False,
                      "num_workers": 0, "pin_memory": False},
    "optim": {"name": "novograd", "lr": 0.002, "betas": [0.8, 0.5], "weight_decay": 0.001,
              "sched": {"name": "CosineAnnealing", "warmup_ratio": 0.05, "min_lr": 1e-5}},
}


def quiet_nemo():
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(pylogging.ERROR)


def load_weights(paths):
    sd = quartznet.load_split_state_dict(paths)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def build_nemo(config_path, sd):
    from omegaconf import OmegaConf, open_dict
    from nemo.collections.asr.models import EncDecCTCModel

    cfg = OmegaConf.load(config_path)
    mcfg = cfg.model
    with open_dict(mcfg):
        labels = list(mcfg.get("labels") or mcfg.decoder.vocabulary)
        for key, val in TRAIN_SECTIONS.items():
            if key not in mcfg:
                mcfg[key] = copy.deepcopy(val)
        for ds in ("train_ds", "validation_ds"):
            mcfg[ds]["labels"] = labels
    model = EncDecCTCModel(cfg=mcfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model


def nemo_texts(out):
    if isinstance(out, tuple):
        out = out[0]
    return [h.text if hasattr(h, "text") else str(h) for h in out]


def transcribe(model, paths, batch_size=8):
    """NeMo's transcribe() on files; falls back to 16-bit WAV copies if the format is refused."""
    model.preprocessor.featurizer.dither = 0.0
    try:
        texts = nemo_texts(model.transcribe(paths, batch_size=batch_size, verbose=False))
    except Exception as e:  # pragma: no cover - depends on the NeMo build's audio readers
        import soundfile as sf

        print(f"  transcribe on the original files failed ({type(e).__name__}: {e}); using WAV copies")
        with tempfile.TemporaryDirectory() as tmp:
            wavs = []
            for i, p in enumerate(paths):
                x, sr = sf.read(p, dtype="float32")
                w = os.path.join(tmp, f"{i:05d}.wav")
                sf.write(w, x, sr, subtype="PCM_16")
                wavs.append(w)
            texts = nemo_texts(model.transcribe(wavs, batch_size=batch_size, verbose=False))
    model.eval()  # NeMo 3.0 leaves the model in training mode after transcribe()
    return texts


def torch_texts(config_path, sd, paths):
    """The pure-torch model (what train_gpu.py evaluates) on the same files, one clip at a time."""
    import soundfile as sf

    m = quartznet.QuartzNet(quartznet.load_config(config_path))
    m.load_state_dict(sd, strict=True)
    m.eval()
    m.preprocessor.featurizer.dither = 0.0
    m.preprocessor.featurizer.pad_to = 0
    out = []
    with torch.no_grad():
        for p in paths:
            x, sr = sf.read(p, dtype="float32", always_2d=True)
            x = torch.from_numpy(x.mean(1))[None]
            f, fl = m.preprocessor(x, torch.tensor([x.shape[1]]))
            lp, ol = m(f, fl)
            out.append(quartznet.greedy_decode(lp, ol, m.labels)[0])
    return out


def report(name, refs, hyps, show=8):
    r = common.error_rates(refs, hyps)
    print(f"RESULT {name}: {len(refs)} clips: WER {r['wer']:.4f} CER {r['cer']:.4f} "
          f"({r['word_errors']}/{r['words']} words, {r['char_errors']}/{r['chars']} chars)")
    for ref, hyp in list(zip(refs, hyps))[:show]:
        print(f"   REF {ref}\n   HYP {hyp}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", help="state-dict file(s), e.g. the two parts")
    ap.add_argument("--from-nemo", help="skip the conversion: only run the checks on this existing .nemo")
    ap.add_argument("--config", default=os.path.join(ROOT, "tools/configs/quartznet_5x5.yaml"))
    ap.add_argument("--out", help="the .nemo to write")
    ap.add_argument("--bundle", help="bundle dir (audio + manifest) for the transcribe() check")
    ap.add_argument("--check", type=int, default=100, help="clips per bundle dev/eval set to transcribe")
    ap.add_argument("--max-utts", type=int, default=0, help="only consider the first N manifest records")
    ap.add_argument("--real-dev", help="e.g. eval/real-dev (reporting only)")
    ap.add_argument("--json", help="write the check results here")
    args = ap.parse_args()
    quiet_nemo()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    from nemo.collections.asr.models import EncDecCTCModel

    if args.from_nemo:
        args.out = args.from_nemo
        model = EncDecCTCModel.restore_from(args.out, map_location="cpu")
        model.eval()
        sd = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        n_params = sum(p.numel() for p in model.parameters())
        print(f"checking {args.out} ({n_params:,} parameters)")
    else:
        if not args.weights or not args.out:
            ap.error("--weights and --out are required (or --from-nemo)")
        sd = load_weights(args.weights)
        model = build_nemo(args.config, sd)
        n_params = sum(p.numel() for p in model.parameters())
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        model.save_to(args.out)
        print(f"saved {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB, {n_params:,} parameters)")
        model = EncDecCTCModel.restore_from(args.out, map_location="cpu")
        model.eval()
        rt = model.state_dict()
        same = all(torch.equal(rt[k].float(), sd[k].float()) for k in sd)
        print(f"restore_from round trip: {len(rt)} tensors, identical to the trained weights: {same}")
        assert same, "round trip changed the weights"
    results = {"nemo": args.out, "params": n_params}

    if args.bundle:
        recs = common.read_bundle(args.bundle)
        if args.max_utts:
            recs = recs[: args.max_utts]
        recs = [r for r in recs if os.path.exists(r["_abspath"])]
        groups = {}
        for r in recs:  # dev and eval sets as they are; training clips only if nothing else exists
            groups.setdefault(r["_split"], []).append(r)
        if set(groups) != {"train"}:
            groups.pop("train", None)
        results["bundle"] = {}
        agree_all = [0, 0]
        for name, rs in sorted(groups.items()):
            rs = rs[: args.check]
            paths = [r["_abspath"] for r in rs]
            refs = [common.normalize_text(r["_text"], model.decoder.vocabulary)[0] for r in rs]
            hyps = transcribe(model, paths)
            results["bundle"][name] = report(f"bundle {name}, NeMo transcribe()", refs, hyps, show=3)
            if not args.from_nemo:
                th = torch_texts(args.config, sd, paths)
                agree_all[0] += sum(a == b for a, b in zip(hyps, th))
                agree_all[1] += len(paths)
        if not args.from_nemo:
            print(f"pure-torch model agrees with NeMo transcribe() on {agree_all[0]}/{agree_all[1]} clips")
            results["torch_agreement"] = agree_all
    if args.real_dev:
        man = os.path.join(args.real_dev, "manifest.tsv")
        rows = [line.rstrip("\n").split("\t") for line in open(man, encoding="utf-8") if line.strip()]
        paths = [os.path.join(args.real_dev, r[0]) for r in rows]
        refs = [common.normalize_text(r[1])[0] for r in rows]
        hyps = transcribe(model, paths)
        results["real_dev"] = report("real-dev, NeMo transcribe() (reporting only)", refs, hyps, show=5)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
