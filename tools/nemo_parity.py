#!/usr/bin/env python3
"""Build QuartzNet test models and NeMo reference outputs (features, log-probs, transcripts).

Run with a NeMo venv's python (tools/setup_nemo.sh). Three sub-commands:

  build      (NeMo 3.0 venv) build the tiny QuartzNet from tools/configs/quartznet_tiny.yaml with
             fixed seeds, randomise + calibrate its BatchNorms, save the weights (state dict, so the
             SAME weights can be loaded under another NeMo version), export ONNX with NeMo's
             model.export() and write the sidecar JSON; also a .nemo for testing export_nemo.py.
  reference  (any NeMo venv) load those weights into a model built by THIS NeMo version and write
             tests/fixtures/nemo-<version>/<clip>.{features,logprobs}.npy plus the transcripts
             into tests/fixtures/manifest.json; checks the ONNX against NeMo's log-probs.
  full       build a full-size QuartzNet (5x5 / 15x5 config) with random (calibrated) weights and
             export ONNX + sidecar for benchmarks (not committed).

Every number comes from NeMo itself: features from model.preprocessor (eval mode, dither 0,
pad_to 0, sliced to NeMo's own valid length), log-probs from model.forward(processed_signal=...),
transcripts from NeMo's CTC greedy decoder (model.decoding.ctc_decoder_predictions_tensor, the
routine transcribe() uses). Nothing here re-implements the frontend or the CTC collapse.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_nemo  # noqa: E402  (sidecar + ONNX export shared with the user-facing exporter)

ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
DEFAULT_SEED = 1234


# --------------------------------------------------------------------------------------------
# model construction


def quiet_nemo():
    """NeMo logs a lot of warnings at import/instantiation; keep the output readable."""
    import logging as pylogging

    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(pylogging.ERROR)


def build_model(config_path: str, seed: int):
    """EncDecCTCModel from a YAML config; torch.manual_seed makes NeMo's xavier init reproducible."""
    import torch
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecCTCModel

    cfg = OmegaConf.load(config_path)
    torch.manual_seed(seed)
    model = EncDecCTCModel(cfg=cfg.model)
    model.eval()
    inference_frontend(model)
    return model


def inference_frontend(model):
    """What NeMo's transcribe() does to the preprocessor: no dither, no pad_to columns."""
    fz = model.preprocessor.featurizer
    fz.dither = 0.0
    fz.pad_to = 0


def load_audio(path: str):
    """float32 = int16 / 32768, exactly what NeMo's AudioSegment (soundfile, float32) gives."""
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32")
    assert sr == 16000 and x.ndim == 1, f"{path}: need 16 kHz mono"
    return x


def nemo_features(model, audio: np.ndarray):
    """NeMo preprocessor output, cut to NeMo's own valid length. Returns (feats [1,64,Tv], info)."""
    import torch

    with torch.no_grad():
        sig = torch.from_numpy(audio)[None, :]
        feats, flen = model.preprocessor(input_signal=sig, length=torch.tensor([len(audio)]))
    tv = int(flen[0])
    info = {"stft_frames": int(feats.shape[-1]), "valid_frames": tv}
    # Columns past the valid length are zeroed by NeMo (>= 2.5 has one: the last STFT frame).
    if feats.shape[-1] > tv:
        info["masked_tail_max_abs"] = float(feats[:, :, tv:].abs().max())
    return feats[:, :, :tv].contiguous(), info


def nemo_logprobs(model, feats):
    """model.forward on precomputed features (all columns valid). Returns (logprobs, enc_len)."""
    import torch

    # Guard: BatchNorm in train mode would silently use batch statistics (see cmd_reference).
    assert not any(m.training for m in model.modules()), "model must be in eval mode"
    with torch.no_grad():
        logp, enc_len, _greedy = model.forward(
            processed_signal=feats, processed_signal_length=torch.tensor([feats.shape[-1]])
        )
    return logp, enc_len


def nemo_greedy_text(model, logp, enc_len) -> str:
    """NeMo's own CTC greedy decoding (the same call EncDecCTCModel.transcribe makes)."""
    import torch

    with torch.no_grad():
        out = model.decoding.ctc_decoder_predictions_tensor(logp, decoder_lengths=enc_len, return_hypotheses=False)
    if isinstance(out, tuple):  # NeMo < 2.x returned (best_hyps, all_hyps)
        out = out[0]
    h = out[0]
    return h.text if hasattr(h, "text") else str(h)


def bn_layers(model):
    import torch

    return [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def randomise_batchnorm(model, calib_feats, seed: int, decoder_gain: float):
    """Make a random QuartzNet's output depend on its input.

    A freshly initialised QuartzNet has BN running stats 0/1 (identity), so activations drift in
    scale through 20+ layers and the decoder emits nearly the same symbol on every frame; such a
    model would let a broken frontend pass the tests. So:
      1. random BN affine weight/bias (different per channel);
      2. calibrate running_mean/var with a train-mode pass over real features (cumulative average,
         momentum=None) so every layer sees roughly unit-scale, input-dependent activations;
      3. perturb those statistics randomly (so they are not exactly "batch statistics");
      4. scale the decoder's 1x1 conv so the log-probs are peaked (clear argmax margins).
    All random draws come from a seeded torch.Generator: deterministic.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    bns = bn_layers(model)
    with torch.no_grad():
        for bn in bns:
            n = bn.num_features
            bn.weight.copy_(0.5 + torch.rand(n, generator=g))  # U(0.5, 1.5)
            bn.bias.copy_(0.2 * torch.randn(n, generator=g))
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average over the calibration pass
        model.encoder.train()
        for f in calib_feats:
            model.encoder(audio_signal=f, length=torch.tensor([f.shape[-1]]))
        model.encoder.eval()
        for bn in bns:
            bn.momentum = 0.1
            n = bn.num_features
            bn.running_mean.add_(0.1 * bn.running_var.sqrt() * torch.randn(n, generator=g))
            bn.running_var.mul_(torch.exp(0.2 * torch.randn(n, generator=g)))
        # A hybrid model's CTC head is its auxiliary decoder (model.decoder is the RNN-T one).
        conv = getattr(model, "ctc_decoder", model.decoder).decoder_layers[0]
        conv.weight.mul_(decoder_gain)
        conv.bias.copy_(0.5 * torch.randn(conv.bias.shape, generator=g))
    model.eval()


def weights_state_dict(model):
    """Encoder + decoder weights only. The preprocessor's buffers (window, mel filterbank) are left
    out ON PURPOSE so that each NeMo version uses its own frontend."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("preprocessor.")}


def load_weights(model, path: str):
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("preprocessor.")]
    if missing or unexpected:
        raise SystemExit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()


# --------------------------------------------------------------------------------------------
# receptive field


def receptive_field(cfg_encoder) -> dict:
    """Per-side receptive field of the encoder, from the jasper block list.

    Convs use 'same' padding (dilation*(k-1)//2, NeMo's get_same_padding), so a conv with kernel k
    and dilation d widens the field by d*(k-1)/2 of ITS input frames per side. The residual paths
    are 1x1 convs and add nothing. Feature frames are 10 ms, output frames 20 ms (stride 2).
    """
    rf_feat = 0.0  # per side, in feature frames
    jump = 1  # feature frames per frame at the current layer's input
    for b in cfg_encoder.jasper:
        k, s, d = int(b.kernel[0]), int(b.stride[0]), int(b.dilation[0])
        stride_last = bool(b.get("stride_last", False))
        for r in range(int(b.repeat)):
            rf_feat += d * (k - 1) / 2 * jump
            if s > 1 and (not stride_last or r == int(b.repeat) - 1):
                jump *= s
    return {"feature_frames": rf_feat, "output_frames": rf_feat / jump, "subsampling": jump}


def measure_receptive_field(model, t=600, pos=300) -> tuple:
    """Empirical check: change one feature column and see which output frames move."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, model.cfg.preprocessor.features, t, generator=g)
    y0, _ = nemo_logprobs(model, x)
    x2 = x.clone()
    x2[:, :, pos] += 5.0
    y1, _ = nemo_logprobs(model, x2)
    changed = (y1 - y0).abs().amax(dim=(0, 2)) > 0
    idx = torch.nonzero(changed).flatten()
    centre = pos / 2
    return float(centre - idx.min()), float(idx.max() - centre)


# --------------------------------------------------------------------------------------------
# ONNX check


def onnx_logprobs(onnx_path: str, feats: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # deterministic & quiet
    sess = ort.InferenceSession(onnx_path, sess_options=so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feed = {"audio_signal": feats}
    if "length" in names:
        feed["length"] = np.array([feats.shape[-1]], dtype=np.int64)
    return sess.run(["logprobs"], feed)[0]


# --------------------------------------------------------------------------------------------
# manifest


def clip_paths(audio_dir: str):
    return sorted(os.path.join(audio_dir, f) for f in os.listdir(audio_dir) if f.endswith(".wav"))


def load_manifest(path: str) -> dict:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"model": "models/quartznet-tiny.onnx", "receptive_field_frames": None, "versions": [], "clips": []}


def save_manifest(path: str, man: dict):
    man["versions"].sort(key=lambda v: [int(p) if p.isdigit() else p for p in v["nemo_version"].split(".")], reverse=True)
    with open(path, "w") as f:
        json.dump(man, f, indent=2, ensure_ascii=False)
        f.write("\n")


def pad_mode_of_this_nemo() -> str:
    """Read the behaviour from the installed source rather than trusting the version number."""
    import inspect

    from nemo.collections.asr.parts.preprocessing.features import FilterbankFeatures

    src = inspect.getsource(FilterbankFeatures.get_seq_len)
    plus_one = "+ 1" in src
    stft_src = inspect.getsource(FilterbankFeatures.stft)
    const = 'pad_mode="constant"' in stft_src or "pad_mode='constant'" in stft_src
    if plus_one and not const:
        return "reflect"
    if const and not plus_one:
        return "zeros"
    raise SystemExit(f"cannot classify this NeMo's padding (plus_one={plus_one}, constant={const})")


# --------------------------------------------------------------------------------------------
# sub-commands


def cmd_build(args):
    import torch

    quiet_nemo()
    model = build_model(args.config, args.seed)
    calib = [nemo_features(model, load_audio(p))[0] for p in clip_paths(args.audio)]
    randomise_batchnorm(model, calib, args.seed + 1, args.decoder_gain)
    n_params = sum(p.numel() for p in model.parameters())

    os.makedirs(os.path.dirname(args.onnx), exist_ok=True)
    torch.save(weights_state_dict(model), args.state)
    desc = (
        f"Tiny QuartzNet test model (tools/configs/{os.path.basename(args.config)}: separable convs, "
        f"stride-2 first conv, residual blocks; {n_params} parameters) with RANDOM weights (seed {args.seed}, "
        "randomised/calibrated BatchNorm). A test fixture for exact parity with NeMo, not a speech recogniser."
    )
    sidecar = export_nemo.build_sidecar(model, "reflect", desc)
    io = export_nemo.export_onnx(model, args.onnx)
    export_nemo.write_sidecar(sidecar, args.onnx)
    if args.nemo:
        os.makedirs(os.path.dirname(os.path.abspath(args.nemo)), exist_ok=True)
        model.save_to(args.nemo)

    rf = receptive_field(model.cfg.encoder)
    left, right = measure_receptive_field(model)
    print(f"params {n_params}; onnx {os.path.getsize(args.onnx)} bytes, opset {io['opset']}, I/O {io}")
    print(f"receptive field (per side): computed {rf}, measured left {left} right {right} output frames")
    assert max(left, right) <= math.ceil(rf["output_frames"]), "measured RF exceeds the computed one"

    man = load_manifest(args.manifest)
    man["model"] = os.path.relpath(args.onnx, os.path.dirname(args.manifest))
    man["receptive_field_frames"] = int(math.ceil(rf["output_frames"]))
    man["receptive_field_feature_frames"] = int(math.ceil(rf["feature_frames"]))
    man["model_params"] = n_params
    man["model_seed"] = args.seed
    save_manifest(args.manifest, man)


def cmd_reference(args):
    import nemo
    import torch

    quiet_nemo()
    torch.set_grad_enabled(False)
    version = nemo.__version__
    pad_mode = pad_mode_of_this_nemo()
    model = build_model(args.config, args.seed)
    load_weights(model, args.state)
    out_dir = os.path.join(args.fixtures, f"nemo-{version}")
    os.makedirs(out_dir, exist_ok=True)

    man = load_manifest(args.manifest)
    man["versions"] = [v for v in man["versions"] if v["nemo_version"] != version]
    man["versions"].append({"nemo_version": version, "dir": f"nemo-{version}", "pad_mode": pad_mode})
    clips = {c["name"]: c for c in man["clips"]}

    print(f"NeMo {version}, torch {torch.__version__}, pad_mode {pad_mode}")
    worst = 0.0
    for path in clip_paths(args.audio):
        name = os.path.splitext(os.path.basename(path))[0]
        audio = load_audio(path)
        feats, info = nemo_features(model, audio)
        logp, enc_len = nemo_logprobs(model, feats)
        text = nemo_greedy_text(model, logp, enc_len)
        assert logp.shape[1] == int(enc_len[0]), "all output frames are valid"

        f_np = feats.numpy().astype("<f4")
        l_np = logp.numpy().astype("<f4")
        np.save(os.path.join(out_dir, f"{name}.features.npy"), f_np)
        np.save(os.path.join(out_dir, f"{name}.logprobs.npy"), l_np)

        ox = onnx_logprobs(args.onnx, f_np)
        diff = float(np.abs(ox - l_np).max())
        worst = max(worst, diff)
        # margin between best and second-best class: how robust the greedy path is to tiny errors
        top2 = np.sort(l_np[0], axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        am_onnx = ox[0].argmax(-1)
        same_argmax = bool((am_onnx == l_np[0].argmax(-1)).all())

        line = (
            f"{name}: {len(audio)} samples -> stft {info['stft_frames']} / valid {info['valid_frames']} frames"
            f" -> {l_np.shape[1]} output frames; onnx max|diff| {diff:.3g} (argmax same: {same_argmax});"
            f" min top1-top2 margin {margin.min():.3g} (frames < 0.01: {(margin < 0.01).sum()})"
        )
        if "masked_tail_max_abs" in info:
            line += f"; masked tail max {info['masked_tail_max_abs']}"
        print(line)
        print(f"    transcript: {text!r}")

        c = clips.setdefault(name, {"name": name})
        c["audio"] = os.path.relpath(path, args.fixtures)
        c["samples"] = len(audio)
        c.setdefault("transcripts", {})[version] = text
        c.setdefault("feature_frames", {})[version] = info["valid_frames"]
        c.setdefault("output_frames", {})[version] = int(l_np.shape[1])
        # Smallest gap between NeMo's best and second-best log-prob over the clip's frames: a Rust
        # result within a tolerance smaller than this is guaranteed the same greedy transcript.
        c.setdefault("min_top2_margin", {})[version] = round(float(margin.min()), 6)

        if args.check_transcribe:
            # Cross-check against NeMo's public API. NOTE: transcribe() pads clips shorter than
            # 1 s with zeros (pad_min_duration, NeMo >= 2.5), so short clips may differ there.
            hyp = model.transcribe([path], batch_size=1, verbose=False)
            if isinstance(hyp, tuple):
                hyp = hyp[0]
            t2 = hyp[0].text if hasattr(hyp[0], "text") else str(hyp[0])
            # NeMo 3.0's transcribe() ends with encoder.unfreeze()/decoder.unfreeze(), which call
            # .train(): the model comes back in TRAINING mode (BatchNorm would then use batch
            # statistics). Put it back into eval mode before the next clip.
            model.eval()
            print(f"    transcribe(): {t2!r} {'(same)' if t2 == text else '(DIFFERENT)'}")

    man["clips"] = sorted(clips.values(), key=lambda c: c["name"])
    save_manifest(args.manifest, man)
    chars = set("".join(c["transcripts"][version] for c in man["clips"]))
    print(f"ONNX vs NeMo max abs diff over all clips: {worst:.3g}; distinct transcript chars: {len(chars)}")
    if worst > args.tolerance:
        raise SystemExit(f"ONNX differs from NeMo by {worst} > {args.tolerance}")


def cmd_full(args):
    quiet_nemo()
    model = build_model(args.config, args.seed)
    calib = [nemo_features(model, load_audio(p))[0] for p in clip_paths(args.audio)]
    randomise_batchnorm(model, calib, args.seed + 1, args.decoder_gain)
    n_params = sum(p.numel() for p in model.parameters())
    desc = (
        f"QuartzNet from tools/configs/{os.path.basename(args.config)} ({n_params} parameters) with RANDOM weights "
        f"(seed {args.seed}, randomised/calibrated BatchNorm): same shapes and cost as the real model, for "
        "benchmarks only; it does not recognise speech."
    )
    sidecar = export_nemo.build_sidecar(model, "reflect", desc)
    io = export_nemo.export_onnx(model, args.onnx)
    export_nemo.write_sidecar(sidecar, args.onnx)
    feats = calib[-1].numpy()
    logp, _ = nemo_logprobs(model, calib[-1])
    diff = float(np.abs(onnx_logprobs(args.onnx, feats) - logp.numpy()).max())
    print(
        f"{args.onnx}: params {n_params}, {os.path.getsize(args.onnx)} bytes, opset {io['opset']}, "
        f"I/O {io['inputs']} -> {io['outputs']}, onnx vs NeMo max|diff| {diff:.3g}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, config):
        p.add_argument("--config", default=os.path.join(HERE, "configs", config))
        p.add_argument("--seed", type=int, default=DEFAULT_SEED)
        p.add_argument("--audio", default=os.path.join(FIX, "audio"), help="folder of 16 kHz mono WAV clips")
        p.add_argument("--decoder-gain", type=float, default=4.0)

    p = sub.add_parser("build", help="build + export the tiny fixture model (NeMo 3.0)")
    common(p, "quartznet_tiny.yaml")
    p.add_argument("--onnx", default=os.path.join(FIX, "models", "quartznet-tiny.onnx"))
    p.add_argument("--state", default=os.path.join(FIX, "models", "quartznet-tiny.pt"))
    p.add_argument("--nemo", default="/tmp/quartznet-tiny.nemo", help=".nemo copy (to test export_nemo.py)")
    p.add_argument("--manifest", default=os.path.join(FIX, "manifest.json"))
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("reference", help="write this NeMo version's features/logprobs/transcripts")
    common(p, "quartznet_tiny.yaml")
    p.add_argument("--onnx", default=os.path.join(FIX, "models", "quartznet-tiny.onnx"))
    p.add_argument("--state", default=os.path.join(FIX, "models", "quartznet-tiny.pt"))
    p.add_argument("--fixtures", default=FIX)
    p.add_argument("--manifest", default=os.path.join(FIX, "manifest.json"))
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--check-transcribe", action="store_true", help="also run model.transcribe() per clip")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("full", help="random-weight full-size model for benchmarks")
    common(p, "quartznet_15x5.yaml")
    p.add_argument("--onnx", required=True)
    p.set_defaults(func=cmd_full)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
