#!/usr/bin/env python3
"""Tiny random-weight NeMo sub-word CTC models and NeMo's outputs for them (issue 24, acoustic half).

Run with the NeMo 3.0 venv:
    /opt/venvs/nemo3/bin/python tools/subword_models.py [--only citrinet,conformer,fastconformer,hybrid]
    /opt/venvs/nemo3/bin/python tools/subword_models.py --check      # regenerate in a temp dir, compare
    /opt/venvs/nemo3/bin/python tools/subword_models.py --nemo-path  # also export each model from a .nemo

For each family (Citrinet, Conformer-CTC, FastConformer-CTC, and a FastConformer hybrid
RNN-T-CTC model exported with its CTC head; configs in tools/configs/, written after NeMo's own
example configs but tiny) this builds an EncDecCTCModelBPE (EncDecHybridRNNTCTCBPEModel) whose
tokenizer is one of the SentencePiece fixtures in tests/fixtures/subword/, with fixed seeds; makes its weights lively
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

and, for NeMo's buffered streaming inference (`FrameBatchASR`, as tools/nemo_streaming.py runs it
for the character model) on the long clips of tests/fixtures/subword-models/long_clips.json (20 to
70 s, concatenations of fixture clips with short silences, which the Rust test builds the same
way from the same recipe), at the element's default windows and at latency 2000 as the engine
rounds them to this model's output frames (40 or 80 ms, docs/STREAMING.md):

  streaming.json               per clip and setting: the windows, buffers run, NeMo's text of the
                               kept log-probs of every full buffer (the CTC decoding transcribe()
                               uses) and FrameBatchASR's own greedy_merge text, the greedy tokens
                               and their frames, and which kept frames streaming.logprobs.npy holds
  streaming.logprobs.npy       those kept log-prob rows [rows, V] (a few per clip and setting)

Hybrid models: FrameBatchASR runs the model's forward (encoder) and its `ctc_decoder`; the text
is the CTC decoding's (`model.ctc_decoding`, after change_decoding_strategy(decoder_type="ctc")).

Every number comes from NeMo; the ONNX export is checked against NeMo's log-probs here.
--nemo-path also saves each model as a .nemo and exports it with tools/export_nemo.py FILE.nemo
(the path for published checkpoints): the description must equal the one written here and the
graph must give NeMo's log-probs.

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
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_nemo  # noqa: E402
import nemo_parity  # noqa: E402  (clip loading, NeMo features/log-probs, BatchNorm randomisation)
import nemo_streaming  # noqa: E402  (NeMo's FrameBatchASR)

ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "subword-models")

FAMILIES = {
    "citrinet": {"config": "citrinet_tiny.yaml", "tokenizer": "unigram128", "seed": 2401, "gain": 4.0, "blank_bias": 1.5},
    "conformer": {"config": "conformer_ctc_tiny.yaml", "tokenizer": "unigram_pc", "seed": 2403, "gain": 4.0, "blank_bias": 1.5},
    "fastconformer": {"config": "fastconformer_ctc_tiny.yaml", "tokenizer": "bpe384_bytes", "seed": 2405, "gain": 4.0, "blank_bias": 1.5},
    "hybrid": {"config": "fastconformer_hybrid_tiny.yaml", "tokenizer": "unigram128", "seed": 2407, "gain": 4.0, "blank_bias": 1.5, "hybrid": True},
}
CLIPS = ["espeak_fox", "flite_hello", "short_yes"]
TOLERANCE = 1e-3

# Long clips for streaming: fixture clips joined by short stretches of digital silence (in
# samples), built from int16 samples / 32768 here and in engine/tests/subword_streaming.rs from
# this recipe (long_clips.json). Only clips whose 80 bands are all well conditioned (not the
# band-limited flite_hello and phone_* voices), and every silence far shorter than the shortest
# buffer, so that no buffer's statistics come from silence alone.
LONG_CLIPS = [
    {
        "name": "joined_25s",
        "parts": [
            {"clip": "LJ001-0001"}, {"silence": 4000}, {"clip": "espeak_fox"}, {"silence": 6400},
            {"clip": "chirp_tones"}, {"silence": 4800}, {"clip": "short_yes"}, {"silence": 3200},
            {"clip": "LJ001-0001"}, {"silence": 2400}, {"clip": "short_yes"},
        ],
    },
    {
        "name": "joined_68s",
        "parts": [
            {"clip": "espeak_fox"}, {"silence": 4000}, {"clip": "LJ001-0001"}, {"silence": 5600},
            {"clip": "chirp_tones"}, {"silence": 4000}, {"clip": "LJ001-0001"}, {"silence": 3000},
            {"clip": "LJ001-0001"}, {"silence": 7000}, {"clip": "short_yes"}, {"silence": 2000},
            {"clip": "LJ001-0001"}, {"silence": 4400}, {"clip": "espeak_fox"}, {"silence": 5200},
            {"clip": "LJ001-0001"}, {"silence": 3600}, {"clip": "LJ001-0001"}, {"silence": 1600},
            {"clip": "short_yes"},
        ],
    },
]
# The engine's windows (left context, chunk, right context in ms) that the streaming fixtures
# hold NeMo to: the element's default (engine/src/config.rs DEFAULT_*_MS) and latency 2000's plan,
# each rounded as the engine rounds it for the model (round_to_frames).
STREAM_SETTINGS = [("default", (1200, 1000, 600)), ("latency-2000", (1000, 500, 300))]
# Kept log-prob rows stored per clip and setting (evenly spread, the first and last included).
STREAM_ROWS = 12


def build(family: dict):
    import torch
    from omegaconf import OmegaConf, open_dict
    from nemo.collections.asr.models import EncDecCTCModelBPE, EncDecHybridRNNTCTCBPEModel

    cfg = OmegaConf.load(os.path.join(HERE, "configs", family["config"]))
    cfg.model.tokenizer.dir = os.path.join(FIX, "subword", family["tokenizer"])
    torch.manual_seed(family["seed"])
    hybrid = family.get("hybrid", False)
    model = (EncDecHybridRNNTCTCBPEModel if hybrid else EncDecCTCModelBPE)(cfg=cfg.model)
    model.eval()
    nemo_parity.inference_frontend(model)
    # transcribe(timestamps=True): word offsets as well as the text. A hybrid model decodes with
    # its CTC head once change_decoding_strategy(decoder_type="ctc") made it cur_decoder.
    decoding = model.cfg.aux_ctc.decoding if hybrid else model.cfg.decoding
    with open_dict(decoding):
        decoding.compute_timestamps = True
    if hybrid:
        model.change_decoding_strategy(decoding, decoder_type="ctc", verbose=False)
        assert model.cur_decoder == "ctc"
    else:
        model.change_decoding_strategy(decoding, verbose=False)
    model.eval()
    return model


def forward_logprobs(model, feats):
    """NeMo's log-probs of features whose every column is valid: model.forward, and for a hybrid
    model its CTC decoder on the encoder output (what FrameBatchASR does). (logprobs, enc_len)."""
    import torch

    if not export_nemo.is_hybrid(model):
        return nemo_parity.nemo_logprobs(model, feats)
    assert not any(m.training for m in model.modules()), "model must be in eval mode"
    with torch.no_grad():
        encoded, enc_len = model.forward(processed_signal=feats, processed_signal_length=torch.tensor([feats.shape[-1]]))
        return model.ctc_decoder(encoder_output=encoded), enc_len


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
        conv = export_nemo.ctc_decoder(model).decoder_layers[0]
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
        hyps = export_nemo.ctc_decoding(model).ctc_decoder_predictions_tensor(
            logp, decoder_lengths=enc_len, return_hypotheses=True
        )
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


def run_family(name: str, family: dict, clips, audio_dir: str, out: str, nemo_path: bool) -> dict:
    import nemo
    import torch

    torch.set_grad_enabled(False)
    model = build(family)
    all_clips = nemo_parity.clip_paths(audio_dir)
    calib = [nemo_parity.nemo_features(model, nemo_parity.load_audio(p))[0] for p in all_clips]
    lively(model, family, calib)
    assert not any(m.training for m in model.modules())
    n_params = sum(p.numel() for p in model.parameters())
    hybrid = export_nemo.is_hybrid(model)

    dest = os.path.join(out, name)
    os.makedirs(dest, exist_ok=True)
    onnx_path = os.path.join(dest, "model.onnx")
    kind = "hybrid RNN-T/CTC test model (exported with its CTC head)" if hybrid else "CTC test model"
    desc = (
        f"Tiny {type(model.encoder).__name__} sub-word {kind} (tools/configs/{family['config']}, "
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
        f"{blank} pieces + blank, position table {sidecar.get('pos_emb_max_len')}"
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
        "blank_id": int(export_nemo.ctc_decoding(model).blank_id),
        "decoding": f"model.{'ctc_' if hybrid else ''}decoding.ctc_decoder_predictions_tensor(logprobs, enc_len, "
        "return_hypotheses=True), greedy_batch, compute_timestamps",
        "clips": [],
    }
    if hybrid:
        man["exported_head"] = "ctc (set_export_config decoder_type ctc; cur_decoder ctc)"
    worst = 0.0
    for clip in clips:
        path = os.path.join(audio_dir, f"{clip}.wav")
        audio = nemo_parity.load_audio(path)
        feats, info = nemo_parity.nemo_features(model, audio)
        logp, enc_len = forward_logprobs(model, feats)
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
    write_json(os.path.join(dest, "manifest.json"), man)
    if worst > TOLERANCE:
        raise SystemExit(f"{name}: ONNX differs from NeMo by {worst} > {TOLERANCE}")
    run_streaming(model, sidecar, dest, audio_dir)
    if nemo_path:
        check_nemo_path(model, sidecar, onnx_path, os.path.join(dest, f"{clips[0]}"))
    return man


def write_json(path: str, value, compact_lists: bool = False):
    """JSON with one-space indents; with `compact_lists`, every list of numbers on one line."""
    text = json.dumps(value, indent=1, ensure_ascii=False)
    if compact_lists:
        text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


# --------------------------------------------------------------------------------------------
# streaming: NeMo's FrameBatchASR on long clips


def long_clip(recipe: dict, audio_dir: str) -> np.ndarray:
    """The recipe's int16 samples: its clips and silences, one after the other."""
    import soundfile as sf

    parts = []
    for part in recipe["parts"]:
        if "clip" in part:
            x, sr = sf.read(os.path.join(audio_dir, f"{part['clip']}.wav"), dtype="int16")
            assert sr == 16000 and x.ndim == 1
            parts.append(x)
        else:
            parts.append(np.zeros(part["silence"], np.int16))
    return np.concatenate(parts)


def checksum(samples: np.ndarray) -> dict:
    """What the Rust test compares its build with: the count, the sum and the position-weighted
    sum of the int16 samples (exact integers)."""
    s = samples.astype(np.int64)
    return {"samples": int(len(s)), "sum": int(s.sum()), "weighted_sum": int((np.arange(len(s), dtype=np.int64) * s).sum())}


def write_long_clips(out: str, audio_dir: str):
    clips = []
    for recipe in LONG_CLIPS:
        samples = long_clip(recipe, audio_dir)
        clips.append({**recipe, **checksum(samples), "seconds": round(len(samples) / 16000, 3)})
        assert 20 <= len(samples) / 16000 <= 70, (recipe["name"], len(samples) / 16000)
    write_json(os.path.join(out, "long_clips.json"), {"generator": "tools/subword_models.py", "sample_rate": 16000, "clips": clips})


def round_to_frames(ms: int, frame_ms: int, minimum: int = 0) -> int:
    """The engine's rounding of a window part (engine/src/streaming/window.rs WindowConfig::
    from_millis): to the nearest whole output frame, half a frame up, at least `minimum` frames.
    Returns milliseconds."""
    frames = max(minimum, (2 * ms + frame_ms) // (2 * frame_ms))
    return frames * frame_ms


def row_indices(n: int) -> list:
    """STREAM_ROWS kept frames evenly spread over [0, n), the first and last included."""
    k = min(STREAM_ROWS, n)
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else list(range(n))


def run_streaming(model, sidecar: dict, dest: str, audio_dir: str):
    """NeMo's FrameBatchASR on every long clip at every STREAM_SETTINGS (as the engine rounds them
    for this model) -> streaming.json + streaming.logprobs.npy."""
    import torch

    subsampling = sidecar["subsampling_factor"]
    frame_ms = 10 * subsampling
    frame_samples = 160 * subsampling
    blank = len(sidecar["labels"])
    settings = []
    for setting_name, asked in STREAM_SETTINGS:
        left, chunk, right = (round_to_frames(ms, frame_ms, minimum) for ms, minimum in zip(asked, (0, 1, 0)))
        settings.append(
            {"name": setting_name, "asked_ms": list(asked), "left_ms": left, "chunk_ms": chunk, "right_ms": right}
        )
    result = {
        "generator": "tools/subword_models.py",
        "scheme": "nemo.collections.asr.parts.utils.streaming_utils.FrameBatchASR (tools/nemo_streaming.py "
        "frame_batch): frame_len = chunk, total_buffer = left + chunk + right, tokens_per_chunk = chunk frames, "
        "delay = chunk + right - 1 frames, audio padded with delay frames of zeros",
        "frame_ms": frame_ms,
        "settings": settings,
        "clips": {},
    }
    rows = []
    for recipe in LONG_CLIPS:
        samples = long_clip(recipe, audio_dir)
        audio = samples.astype(np.float32) / 32768.0
        # The stream's output frames, as NeMo 3.0 counts feature frames (floor(L / 160)).
        audio_frames = -(-(len(samples) // 160) // subsampling)
        per_setting = {}
        for setting in settings:
            run = nemo_streaming.frame_batch(
                model, audio, setting["left_ms"], setting["chunk_ms"], setting["right_ms"], subsampling
            )
            tokens_per_chunk = setting["chunk_ms"] // frame_ms
            right = setting["right_ms"] // frame_ms
            full = (run["buffers"] - 1) * tokens_per_chunk
            # NeMo's last buffer is filled with 0.0 features (not silence) past the padded audio;
            # the engine stops before it. The full buffers must keep every frame of the audio, or
            # the engine runs one more buffer (with silence) that NeMo has no counterpart of.
            if full - right < audio_frames:
                raise SystemExit(
                    f"{recipe['name']} {setting['name']}: the full buffers keep {full - right} of the audio's "
                    f"{audio_frames} frames; change the recipe's length"
                )
            kept = run["logits"][:full]
            lp = torch.from_numpy(kept)[None]
            h = hypothesis(model, lp, torch.tensor([full]))
            am = kept.argmax(-1)
            emitted = [t for t in range(full) if am[t] != blank and (t == 0 or am[t] != am[t - 1] or am[t - 1] == blank)]
            idx = row_indices(full)
            per_setting[setting["name"]] = {
                "buffers": run["buffers"],
                "buffer_frames": run["buffer_frames"],
                "kept_frames": full,
                "audio_frames": audio_frames,
                "text_full_buffers": h.text,
                "merge_text_full_buffers": run["merge_text_full_buffers"],
                "merge_text": run["merge_text"],
                "tokens": [int(am[t]) for t in emitted],
                "token_frames": emitted,
                "rows": idx,
                "row_offset": sum(len(r) for r in rows),
            }
            rows.append(kept[idx])
            print(
                f"  stream {recipe['name']} {setting['name']} ({setting['left_ms']}/{setting['chunk_ms']}/"
                f"{setting['right_ms']} ms): {run['buffers']} buffers of {run['buffer_frames']} frames, {full} kept "
                f"frames, {len(emitted)} tokens{'' if h.text == run['merge_text_full_buffers'] else ' (greedy_merge text differs)'}"
            )
        result["clips"][recipe["name"]] = per_setting
    write_json(os.path.join(dest, "streaming.json"), result, compact_lists=True)
    np.save(os.path.join(dest, "streaming.logprobs.npy"), np.concatenate(rows).astype("<f4"))


# --------------------------------------------------------------------------------------------
# the .nemo path of tools/export_nemo.py


def check_nemo_path(model, sidecar: dict, onnx_path: str, stem: str):
    """Save the model as a .nemo, export it with tools/export_nemo.py FILE.nemo (what a published
    checkpoint goes through) and check that the description is the one written here and that the
    graph gives NeMo's log-probs."""
    with tempfile.TemporaryDirectory(prefix="subword_nemo_") as tmp:
        nemo_file = os.path.join(tmp, "model.nemo")
        model.save_to(nemo_file)
        out = os.path.join(tmp, "exported.onnx")
        cmd = [sys.executable, os.path.join(HERE, "export_nemo.py"), nemo_file, "-o", out, "--pad-mode", "zeros",
               "--description", sidecar["description"]]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"export_nemo.py {nemo_file} failed:\n{done.stderr[-3000:]}")
        with open(os.path.join(tmp, "exported.json"), encoding="utf-8") as f:
            exported = json.load(f)
        exported.pop("language", None)  # the CLI's --language default
        if exported != sidecar:
            keys = sorted(k for k in set(exported) | set(sidecar) if exported.get(k) != sidecar.get(k))
            raise SystemExit(f"export_nemo.py's description of the .nemo differs in {keys}")
        feats = np.load(f"{stem}.features.npy")
        diff = float(np.abs(nemo_parity.onnx_logprobs(out, feats) - np.load(f"{stem}.logprobs.npy")).max())
        if diff > TOLERANCE:
            raise SystemExit(f"the .nemo export differs from NeMo's log-probs by {diff}")
        print(f"  .nemo path: export_nemo.py writes the same description; log-probs within {diff:.2g} of NeMo's")


def compare_trees(a: str, b: str) -> int:
    bad = 0
    for root, _, files in os.walk(b):
        for fn in sorted(files):
            rel = os.path.relpath(os.path.join(root, fn), b)
            pa = os.path.join(a, rel)
            same = os.path.exists(pa) and open(pa, "rb").read() == open(os.path.join(b, rel), "rb").read()
            bad += not same
            print(f"{'same' if same else 'DIFFERENT'}: {rel}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--audio", default=os.path.join(FIX, "audio"))
    ap.add_argument("--out", default=OUT, help="fixture root (default tests/fixtures/subword-models)")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    ap.add_argument("--nemo-path", action="store_true",
                    help="also save each model as .nemo and check tools/export_nemo.py FILE.nemo against it")
    args = ap.parse_args()
    nemo_parity.quiet_nemo()
    out = tempfile.mkdtemp(prefix="subword_models_check_") if args.check else args.out
    os.makedirs(out, exist_ok=True)
    write_long_clips(out, args.audio)
    for name in args.only.split(","):
        run_family(name, FAMILIES[name], args.clips.split(","), args.audio, out, args.nemo_path)
    if args.check:
        bad = compare_trees(args.out, out)
        shutil.rmtree(out)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
