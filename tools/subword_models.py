#!/usr/bin/env python3
"""Tiny random-weight NeMo sub-word CTC models and NeMo's outputs for them (issue 24, acoustic half).

Run with the NeMo 3.0 venv:
    /opt/venvs/nemo3/bin/python tools/subword_models.py [--only citrinet,conformer,fastconformer]

For each family (Citrinet, Conformer-CTC, FastConformer-CTC; configs in tools/configs/, written
after NeMo's own example configs but tiny) this builds an EncDecCTCModelBPE whose tokenizer is one
of the SentencePiece fixtures in tests/fixtures/subword/, with fixed seeds; makes its weights lively
(randomised + calibrated BatchNorm, a scaled decoder with random bias, as tools/nemo_parity.py does
for QuartzNet) so that greedy output has many different pieces and word starts; exports it with
NeMo's model.export() and writes the quartznetstt description (tools/export_nemo.py build_sidecar:
format quartznetstt-model/2, `words.unit = "pieces"`). Then, for a few clips of
tests/fixtures/audio/, it writes into tests/fixtures/subword-models/<family>/:

  model.onnx, model.json       the exported model and its description
  <clip>.features.npy          NeMo's preprocessor output [1, 80, T] (eval, dither 0, pad_to 0,
                               cut to NeMo's valid length floor(L / 160))
  <clip>.logprobs.npy          model.forward(processed_signal=features) [1, T', V]
  manifest.json                per clip: NeMo's greedy text and word offsets
                               (model.decoding.ctc_decoder_predictions_tensor with
                               compute_timestamps, i.e. transcribe(timestamps=True)), frame counts,
                               the ONNX-vs-NeMo difference and the smallest top-2 margin

Every number comes from NeMo; the ONNX export is checked against NeMo's log-probs here.

Export quirk (Citrinet): NeMo's export turns the encoder's masking off (ConvASREncoder
`conv_mask` and the squeeze-excite's masked pooling), so the exported graph treats every input
frame as audio although it has a `length` input: 16 zero columns past `length` (NeMo's pad_to)
move its log-probs by about 5 (manifest `export_honours_length`: false). NeMo's own forward is
only equal when given exactly the frames it counts as valid: the features here are cut to NeMo's
valid length, the model sees no pad_to columns, and the engine feeds exactly its frames. The
Conformers' exports honour `length`.
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_nemo  # noqa: E402
import nemo_parity  # noqa: E402  (clip loading, NeMo features/log-probs, BatchNorm randomisation)

ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "subword-models")

FAMILIES = {
    "citrinet": {"config": "citrinet_tiny.yaml", "tokenizer": "unigram128", "seed": 2401, "gain": 4.0, "blank_bias": 1.5},
    "conformer": {"config": "conformer_ctc_tiny.yaml", "tokenizer": "unigram_pc", "seed": 2403, "gain": 4.0, "blank_bias": 1.5},
    "fastconformer": {"config": "fastconformer_ctc_tiny.yaml", "tokenizer": "bpe384_bytes", "seed": 2405, "gain": 4.0, "blank_bias": 1.5},
}
CLIPS = ["espeak_fox", "flite_hello", "short_yes"]
TOLERANCE = 1e-3


def build(family: dict):
    import torch
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecCTCModelBPE

    cfg = OmegaConf.load(os.path.join(HERE, "configs", family["config"]))
    cfg.model.tokenizer.dir = os.path.join(FIX, "subword", family["tokenizer"])
    torch.manual_seed(family["seed"])
    model = EncDecCTCModelBPE(cfg=cfg.model)
    model.eval()
    nemo_parity.inference_frontend(model)
    # transcribe(timestamps=True): word offsets as well as the text
    from omegaconf import open_dict

    with open_dict(model.cfg.decoding):
        model.cfg.decoding.compute_timestamps = True
    model.change_decoding_strategy(model.cfg.decoding, verbose=False)
    model.eval()
    return model


def lively(model, family: dict, calib):
    """Make a random model's greedy output vary with the input and over many pieces.

    1. Random BatchNorm affine values and statistics calibrated on real features
       (tools/nemo_parity.py randomise_batchnorm), then a seeded perturbation of every LayerNorm
       (Conformers).
    2. The decoder (a 1x1 conv) is standardised per class over the calibration clips' frames: each
       class's logit gets mean 0 and standard deviation `gain` there, so every piece has about the
       same chance to win a frame (a random decoder is otherwise dominated by a few classes whose
       weights happen to align with the encoder's mean output); the blank's bias is then raised by
       `blank_bias` standard deviations so that blank frames separate repeated pieces, as in a
       trained model.
    """
    import torch

    nemo_parity.randomise_batchnorm(model, calib, family["seed"] + 1, 1.0)
    g = torch.Generator().manual_seed(family["seed"] + 2)
    with torch.no_grad():
        for m in model.encoder.modules():
            if isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        conv = model.decoder.decoder_layers[0]
        logits = []
        for f in calib:
            enc, _ = model.encoder(audio_signal=f, length=torch.tensor([f.shape[-1]]))
            logits.append(conv(enc)[0])  # [C, T']
        z = torch.cat(logits, dim=1)
        mean, std = z.mean(dim=1), z.std(dim=1).clamp_min(1e-6)
        scale = family["gain"] / std
        conv.weight.mul_(scale[:, None, None])
        conv.bias.copy_((conv.bias - mean) * scale)
        conv.bias[-1] += family["blank_bias"] * family["gain"]
    model.eval()


def hypothesis(model, logp, enc_len):
    import torch

    with torch.no_grad():
        hyps = model.decoding.ctc_decoder_predictions_tensor(logp, decoder_lengths=enc_len, return_hypotheses=True)
    if isinstance(hyps, tuple):
        hyps = hyps[0]
    return hyps[0]


def export_honours_length(onnx_path: str, stem: str) -> bool:
    """Whether the exported graph ignores input columns past its `length` input: NeMo's features
    plus 16 zero columns (what pad_to adds) with length = the valid frames must give NeMo's
    log-probs on the valid output frames. False for Citrinet (its masking is off in export)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    if "length" not in [i.name for i in sess.get_inputs()]:
        return False
    feats = np.load(f"{stem}.features.npy")
    nemo = np.load(f"{stem}.logprobs.npy")
    padded = np.concatenate([feats, np.zeros(feats.shape[:2] + (16,), np.float32)], axis=-1)
    out = sess.run(["logprobs"], {"audio_signal": padded, "length": np.array([feats.shape[-1]], np.int64)})[0]
    return bool(np.abs(out[:, : nemo.shape[1]] - nemo).max() <= TOLERANCE)


def run_family(name: str, family: dict, clips, audio_dir: str) -> dict:
    import nemo
    import torch

    torch.set_grad_enabled(False)
    model = build(family)
    all_clips = nemo_parity.clip_paths(audio_dir)
    calib = [nemo_parity.nemo_features(model, nemo_parity.load_audio(p))[0] for p in all_clips]
    lively(model, family, calib)
    assert not any(m.training for m in model.modules())
    n_params = sum(p.numel() for p in model.parameters())

    dest = os.path.join(OUT, name)
    os.makedirs(dest, exist_ok=True)
    onnx_path = os.path.join(dest, "model.onnx")
    desc = (
        f"Tiny {type(model.encoder).__name__} sub-word CTC test model (tools/configs/{family['config']}, "
        f"tokenizer tests/fixtures/subword/{family['tokenizer']}; {n_params} parameters) with RANDOM weights "
        f"(seed {family['seed']}). A test fixture for exact parity with NeMo, not a speech recogniser."
    )
    sidecar = export_nemo.build_sidecar(model, "zeros", desc)
    io = export_nemo.export_onnx(model, onnx_path)
    export_nemo.write_sidecar(sidecar, onnx_path)
    blank = len(sidecar["labels"])
    print(
        f"{name}: {n_params} params, onnx {os.path.getsize(onnx_path)} bytes, opset {io['opset']}, "
        f"inputs {io['inputs']} outputs {io['outputs']}, subsampling {sidecar['subsampling_factor']}, "
        f"{blank} pieces + blank"
    )

    man = {
        "family": name,
        "nemo_version": nemo.__version__,
        "generator": "tools/subword_models.py",
        "model_class": type(model).__name__,
        "encoder": type(model.encoder).__name__,
        "config": f"tools/configs/{family['config']}",
        "tokenizer": f"subword/{family['tokenizer']}",
        "seed": family["seed"],
        "params": n_params,
        "model": "model.onnx",
        "onnx_inputs": io["inputs"],
        "subsampling_factor": sidecar["subsampling_factor"],
        "blank_id": int(model.decoding.blank_id),
        "decoding": "model.decoding.ctc_decoder_predictions_tensor(logprobs, enc_len, return_hypotheses=True), "
        "greedy_batch, compute_timestamps",
        "clips": [],
    }
    worst = 0.0
    for clip in clips:
        path = os.path.join(audio_dir, f"{clip}.wav")
        audio = nemo_parity.load_audio(path)
        feats, info = nemo_parity.nemo_features(model, audio)
        logp, enc_len = nemo_parity.nemo_logprobs(model, feats)
        assert logp.shape[1] == int(enc_len[0])
        h = hypothesis(model, logp, enc_len)
        f_np = feats.numpy().astype("<f4")
        l_np = logp.numpy().astype("<f4")
        np.save(os.path.join(dest, f"{clip}.features.npy"), f_np)
        np.save(os.path.join(dest, f"{clip}.logprobs.npy"), l_np)
        ox = nemo_parity.onnx_logprobs(onnx_path, f_np)
        assert ox.shape == l_np.shape, (ox.shape, l_np.shape)
        diff = float(np.abs(ox - l_np).max())
        worst = max(worst, diff)
        am = l_np[0].argmax(-1)
        top2 = np.sort(l_np[0], axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        tokens = [int(t) for t, p in zip(am, [blank] + list(am[:-1])) if t != blank and (t != p or p == blank)]
        words = [
            {"word": w["word"], "start_offset": int(w["start_offset"]), "end_offset": int(w["end_offset"])}
            for w in h.timestamp["word"]
        ]
        print(
            f"  {clip}: {len(audio)} samples -> {info['valid_frames']} feature frames -> {l_np.shape[1]} output "
            f"frames; onnx max|diff| {diff:.3g}; {len(tokens)} tokens ({len(set(tokens))} distinct), "
            f"{len(words)} words, min top-2 margin {margin.min():.3g}"
        )
        print(f"    text: {h.text!r}")
        man["clips"].append(
            {
                "name": clip,
                "audio": f"audio/{clip}.wav",
                "samples": len(audio),
                "feature_frames": info["valid_frames"],
                "output_frames": int(l_np.shape[1]),
                "text": h.text,
                "tokens": tokens,
                "word_offsets": words,
                "onnx_max_abs_diff": float(f"{diff:.3g}"),
                "min_top2_margin": round(float(margin.min()), 6),
            }
        )
    man["export_honours_length"] = export_honours_length(onnx_path, os.path.join(dest, f"{clips[0]}"))
    print(f"  export honours `length` (16 zero columns past it change nothing): {man['export_honours_length']}")
    with open(os.path.join(dest, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(man, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if worst > TOLERANCE:
        raise SystemExit(f"{name}: ONNX differs from NeMo by {worst} > {TOLERANCE}")
    return man


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--audio", default=os.path.join(FIX, "audio"))
    args = ap.parse_args()
    nemo_parity.quiet_nemo()
    for name in args.only.split(","):
        run_family(name, FAMILIES[name], args.clips.split(","), args.audio)


if __name__ == "__main__":
    main()
