#!/usr/bin/env python3
"""Full-size random-weight NeMo sub-word CTC models, exported for measuring speed and memory (issue 24).

Run with the NeMo 3.0 venv (minutes and several GB of memory per model):
    /opt/venvs/nemo3/bin/python tools/fullsize_models.py [--only fastconformer_ctc_large,citrinet_1024]
        [--out .devdata/fullsize] [--text FILE ...] [--no-int8]
    /opt/venvs/nemo3/bin/python tools/fullsize_models.py --only parakeet_ctc_0.6b --no-int8   # over 2 GB
    /opt/venvs/nemo3/bin/python tools/fullsize_models.py --only fastconformer_ctc_large_streaming  # cache-aware

For each model (configs in tools/configs/, written after NeMo's published configs of
stt_en_fastconformer_ctc_large and stt_en_citrinet_1024; parakeet_ctc_0.6b, Parakeet-CTC 0.6B's
architecture, 2.4 GB in fp32, checks the export of models over 2 GB) this

1. trains a 1024-piece unigram SentencePiece tokenizer (NeMo's create_spt_model, lower case,
   the vocabulary size of both published models) on a local English text: by default the
   language-model text that tools/lm/get_text.sh fetches (~/.cache/quartznetstt/lm-text/text/,
   Jane Austen and Moby Dick, already lower case without punctuation, as the published models
   write), or --text files;
2. builds the EncDecCTCModelBPE with random weights, made lively as the tiny fixtures are
   (tools/subword_models.py `lively`: BatchNorm calibrated on real features, a standardised
   decoder), so that activations keep a sane scale through the deep stacks and the greedy
   output varies: the speed of a CTC decoder does not depend on the weights, but NaNs or a
   constant output would make the decoding figures meaningless;
3. exports it with NeMo's model.export() and writes the description (tools/export_nemo.py
   build_sidecar) into OUT/<name>/model.onnx + model.json, and checks the ONNX log-probs against
   NeMo's on one clip;
4. quantises it to int8 (tools/quantize_onnx.py: its default scheme, in the QDQ format for the
   FastConformer, whose attention the default QOperator format cannot quantise) into
   OUT/<name>/model.int8.onnx + model.int8.json, calibrated on NeMo's features of the clips in
   tests/fixtures/audio and samples/ (never an evaluation set).

fastconformer_ctc_large_streaming (not in the default list) is the encoder and CTC head of
stt_en_fastconformer_hybrid_large_streaming_multi (tools/configs/fastconformer_ctc_large_streaming.yaml):
its model.onnx is the cache-aware streaming graph (tools/export_nemo.py --cache-aware), checked
against NeMo's conformer_stream_step at every look-ahead, and buffered.onnx + buffered.json the
same weights as a whole-utterance graph, for comparing the two streaming strategies on one model
(benches/cache_aware.py); no int8.

OUT (default .devdata/fullsize, git-ignored) also gets OUT/<name>/info.json: parameter count,
file sizes, export and quantisation times. These models recognise nothing: they exist to measure
what a full-size model costs on a CPU (benches/fullsize.py, docs/SUBWORD.md "Full-size models on
CPU").
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_nemo  # noqa: E402
import nemo_parity  # noqa: E402
import quantize_onnx  # noqa: E402
import subword_models  # noqa: E402  (lively: the weight recipe of the tiny fixtures)

ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, ".devdata", "fullsize")
LM_TEXT = os.path.join(os.path.expanduser("~"), ".cache", "quartznetstt", "lm-text", "text")
DEFAULT_TEXT = [os.path.join(LM_TEXT, "austen.txt"), os.path.join(LM_TEXT, "moby_dick.txt")]
AUDIO_DIRS = [os.path.join(ROOT, "tests", "fixtures", "audio"), os.path.join(ROOT, "samples")]
CHECK_CLIP = os.path.join(ROOT, "tests", "fixtures", "audio", "espeak_fox.wav")
VOCAB_SIZE = 1024

MODELS = {
    # int8: the default QOperator format (QLinearConv, QLinearMatMul) fails on the Conformer's
    # attention ("Invalid model with unknown initializers/tensors": the Softmax outputs and the
    # conv module's masking Mul); the QDQ format quantises the same ops and ORT fuses them.
    "fastconformer_ctc_large": {"config": "fastconformer_ctc_large.yaml", "seed": 2411, "gain": 4.0,
                                "blank_bias": 1.5, "published": "stt_en_fastconformer_ctc_large",
                                "int8_format": "qdq"},
    "citrinet_1024": {"config": "citrinet_1024.yaml", "seed": 2413, "gain": 4.0, "blank_bias": 1.5,
                      "published": "stt_en_citrinet_1024", "int8_format": "qoperator"},
    # Over 2 GB in fp32: torch.onnx.export writes its weights as external data, which
    # export_nemo.export_onnx gathers into model.onnx.data. Not in the default list.
    "parakeet_ctc_0.6b": {"config": "parakeet_ctc_0.6b.yaml", "seed": 2417, "gain": 4.0, "blank_bias": 1.5,
                          "published": "parakeet-ctc-0.6b", "int8_format": "qdq"},
    # Cache-aware streaming (issue 26): model.onnx is the streaming graph with its `streaming`
    # section (tools/export_nemo.py --cache-aware); buffered.onnx the same weights exported as a
    # whole-utterance graph, which the engine streams over buffered windows, so that
    # benches/cache_aware.py compares the two strategies on one model. No int8 (export_nemo.py
    # does not quantise a cache-aware graph).
    "fastconformer_ctc_large_streaming": {"config": "fastconformer_ctc_large_streaming.yaml", "seed": 2419,
                                          "gain": 4.0, "blank_bias": 1.5,
                                          "published": "stt_en_fastconformer_hybrid_large_streaming_multi",
                                          "cache_aware": True},
}
DEFAULT_MODELS = ["fastconformer_ctc_large", "citrinet_1024"]


def train_tokenizer(texts, out_dir: str, vocab_size: int = VOCAB_SIZE) -> str:
    """A unigram SentencePiece model of `vocab_size` pieces in out_dir/tokenizer.model; returns out_dir."""
    import sentencepiece
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    if os.path.exists(os.path.join(out_dir, "tokenizer.model")):
        return out_dir
    missing = [t for t in texts if not os.path.isfile(t)]
    if missing:
        raise SystemExit(
            f"no tokenizer text: {', '.join(missing)} missing; run `bash tools/lm/get_text.sh` or pass --text FILE"
        )
    os.makedirs(out_dir, exist_ok=True)
    data = os.path.join(out_dir, "text.txt")
    with open(data, "w", encoding="utf-8") as f:
        for t in texts:
            with open(t, encoding="utf-8") as src:
                for line in src:
                    line = " ".join(line.lower().split())
                    if line:
                        f.write(line + "\n")
    sentencepiece.set_random_generator_seed(24)
    create_spt_model(data, vocab_size=vocab_size, sample_size=-1, do_lower_case=True,
                     tokenizer_type="unigram", output_dir=out_dir)
    os.remove(data)
    return out_dir


def build(spec: dict, tok_dir: str):
    import torch
    from omegaconf import OmegaConf
    from nemo.collections.asr.models import EncDecCTCModelBPE

    cfg = OmegaConf.load(os.path.join(HERE, "configs", spec["config"]))
    cfg.model.tokenizer.dir = tok_dir
    torch.manual_seed(spec["seed"])
    model = EncDecCTCModelBPE(cfg=cfg.model)
    model.eval()
    nemo_parity.inference_frontend(model)
    return model


def clips():
    return sorted(p for d in AUDIO_DIRS for p in glob.glob(os.path.join(d, "*.wav")))


def run_model(name: str, spec: dict, args) -> dict:
    import torch

    torch.set_grad_enabled(False)
    dest = os.path.join(args.out, name)
    os.makedirs(dest, exist_ok=True)
    info = {"name": name, "published": spec["published"], "config": f"tools/configs/{spec['config']}",
            "generator": "tools/fullsize_models.py", "seed": spec["seed"]}

    t0 = time.time()
    tok_dir = train_tokenizer(args.text, os.path.join(dest, "tokenizer"))
    model = build(spec, tok_dir)
    calib = [nemo_parity.nemo_features(model, nemo_parity.load_audio(p))[0] for p in clips()]
    subword_models.lively(model, spec, calib)
    assert not any(m.training for m in model.modules())
    n_params = sum(p.numel() for p in model.parameters())
    info["params"] = n_params
    info["build_s"] = round(time.time() - t0, 1)
    print(f"{name}: {n_params} parameters ({n_params / 1e6:.1f} M), built in {info['build_s']} s", flush=True)

    onnx_path = os.path.join(dest, "model.onnx")
    desc = (
        f"Full-size {type(model.encoder).__name__} sub-word CTC model with RANDOM weights: the architecture of "
        f"NeMo's {spec['published']} (tools/configs/{spec['config']}; {n_params} parameters; a 1024-piece "
        f"unigram tokenizer trained by tools/fullsize_models.py). For speed and memory measurements only: "
        f"it recognises nothing."
    )
    cache_aware = spec.get("cache_aware", False)
    if cache_aware:
        desc += " Cache-aware streaming graph (docs/CACHE_AWARE.md); buffered.onnx holds the same weights as a whole-utterance graph."
    sidecar = export_nemo.build_sidecar(model, "zeros", desc, cache_aware=cache_aware)
    t0 = time.time()
    io = export_nemo.export_onnx(model, onnx_path, cache_aware=cache_aware)
    if cache_aware:
        sidecar["streaming"] = export_nemo.cache_aware_section(model, io)
    export_nemo.write_sidecar(sidecar, onnx_path)
    info["export_s"] = round(time.time() - t0, 1)
    info["onnx_bytes"] = os.path.getsize(onnx_path)
    info["external_data_bytes"] = io["external_data_bytes"]
    info["onnx_inputs"] = io["inputs"]
    if io["external_data_bytes"]:
        print(f"  external data: {onnx_path}.data, {io['external_data_bytes'] / 1e6:.1f} MB", flush=True)
    print(f"  exported {onnx_path}: {info['onnx_bytes'] / 1e6:.1f} MB in {info['export_s']} s, opset {io['opset']}, "
          f"inputs {io['inputs']}, {len(sidecar['labels'])} pieces + blank, subsampling {sidecar['subsampling_factor']}",
          flush=True)

    feats, _ = nemo_parity.nemo_features(model, nemo_parity.load_audio(CHECK_CLIP))
    logp, _ = nemo_parity.nemo_logprobs(model, feats)
    if cache_aware:
        info.update(export_buffered(model, dest, desc, feats, logp))
        info.update(check_streaming(model, onnx_path, sidecar["streaming"]))
        ox = nemo_parity.onnx_logprobs(os.path.join(dest, "buffered.onnx"), feats.numpy())
    else:
        ox = nemo_parity.onnx_logprobs(onnx_path, feats.numpy())
    info["onnx_max_abs_diff"] = float(f"{float(np.abs(ox - logp.numpy()).max()):.3g}")
    argmax = logp.numpy()[0].argmax(-1)
    info["check_clip_distinct_argmax"] = int(len(set(argmax.tolist())))
    print(f"  ONNX vs NeMo on {os.path.basename(CHECK_CLIP)}: max|diff| {info['onnx_max_abs_diff']}, "
          f"{info['check_clip_distinct_argmax']} distinct best pieces over {len(argmax)} frames", flush=True)

    if args.int8 and not cache_aware:
        work = tempfile.mkdtemp(prefix="fullsize_quant_")
        features = []
        for i, f in enumerate(calib):
            path = os.path.join(work, f"{i:04d}.npy")
            np.save(path, f.numpy().astype(np.float32))
            features.append(path)
        del model, calib
        int8_path = quantize_onnx.int8_path(onnx_path)
        t0 = time.time()
        text = quantize_onnx.quantize(onnx_path, int8_path, fmt=spec["int8_format"], feature_paths=features,
                                      work_dir=work)
        shutil.rmtree(work, ignore_errors=True)
        quantize_onnx.write_int8_sidecar(onnx_path, int8_path, text)
        info["int8_s"] = round(time.time() - t0, 1)
        info["int8_bytes"] = os.path.getsize(int8_path)
        info["int8_scheme"] = text
        ox8 = nemo_parity.onnx_logprobs(int8_path, feats.numpy())
        info["int8_argmax_agreement"] = round(float((ox8[0].argmax(-1) == argmax).mean()), 3)
        print(f"  int8 {int8_path}: {info['int8_bytes'] / 1e6:.1f} MB in {info['int8_s']} s ({text}); "
              f"best piece equal to fp32's on {100 * info['int8_argmax_agreement']:.1f}% of the check clip's frames",
              flush=True)
    with open(os.path.join(dest, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def export_buffered(model, dest: str, desc: str, feats, logp) -> dict:
    """The same weights as a whole-utterance graph (no cache support) in dest/buffered.onnx with its
    description: what the engine streams over buffered windows."""
    path = os.path.join(dest, "buffered.onnx")
    desc = desc.replace("Cache-aware streaming graph", "Whole-utterance graph (streamed over buffered windows)").replace(
        "buffered.onnx holds", "model.onnx holds").replace("as a whole-utterance graph", "as a cache-aware streaming graph")
    sidecar = export_nemo.build_sidecar(model, "zeros", desc)
    t0 = time.time()
    io = export_nemo.export_onnx(model, path)
    export_nemo.write_sidecar(sidecar, path)
    print(f"  exported {path} (whole utterance, for buffered windows): {os.path.getsize(path) / 1e6:.1f} MB, "
          f"inputs {io['inputs']}", flush=True)
    return {"buffered_onnx_bytes": os.path.getsize(path), "buffered_export_s": round(time.time() - t0, 1)}


def check_streaming(model, onnx_path: str, streaming: dict) -> dict:
    """The streaming graph stepped as docs/CACHE_AWARE.md section 3 says against NeMo's own
    cache-aware streaming (conformer_stream_step), on the check clip at every look-ahead."""
    import cache_aware_fixtures as caf

    audio = nemo_parity.load_audio(CHECK_CLIP)
    sess = caf.session(onnx_path)
    worst = {}
    for entry in streaming["look_aheads"]:
        ctx = entry["att_context_size"]
        nemo = caf.nemo_stream(model, audio, ctx)
        ours = caf.onnx_stream(sess, nemo["features"], streaming, ctx)
        diff = caf.max_diff(nemo["steps"], ours["steps"])
        worst[str(ctx)] = float(f"{diff:.3g}")
        print(f"  streaming graph at {ctx} vs NeMo's conformer_stream_step: {len(nemo['steps'])} steps, "
              f"max|diff| {worst[str(ctx)]}", flush=True)
    return {"streaming_vs_nemo_max_abs_diff": worst}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated, of: {', '.join(MODELS)} (default: {','.join(DEFAULT_MODELS)})")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default .devdata/fullsize)")
    ap.add_argument("--text", nargs="+", default=DEFAULT_TEXT,
                    help="text files the tokenizer is trained on (default: tools/lm/get_text.sh's Austen and Moby Dick)")
    ap.add_argument("--no-int8", dest="int8", action="store_false", help="skip the int8 quantisation")
    args = ap.parse_args()
    nemo_parity.quiet_nemo()
    for name in args.only.split(","):
        if name not in MODELS:
            ap.error(f"unknown model {name!r} (one of {', '.join(MODELS)})")
        run_model(name, MODELS[name], args)


if __name__ == "__main__":
    main()
