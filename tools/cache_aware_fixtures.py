#!/usr/bin/env python3
"""Cache-aware streaming FastConformer fixtures (issue 26, NeMo side): tiny random-weight models,
their cache-support ONNX exports, and NeMo's own cache-aware streaming of long clips.

Run with the NeMo 3.0 venv:
    /opt/venvs/nemo3/bin/python tools/cache_aware_fixtures.py               # write tests/fixtures/cache-aware/
    /opt/venvs/nemo3/bin/python tools/cache_aware_fixtures.py --check       # regenerate in a temp dir, compare
    /opt/venvs/nemo3/bin/python tools/cache_aware_fixtures.py --check-onnx  # the executable specification

NeMo's cache-aware streaming (docs/CACHE_AWARE.md) runs a FastConformer trained with causal
convolutions and chunked_limited attention chunk by chunk, computing each frame once and carrying
the encoder's caches from one chunk to the next. For each family (a FastConformer-CTC and the CTC
head of a FastConformer hybrid RNN-T/CTC model; configs tools/configs/fastconformer_{ctc,hybrid}_
streaming_tiny.yaml, written after NeMo's cache_aware_streaming example configs, with the
multi-look-ahead list [[70,13],[70,6],[70,1],[70,0]] of stt_en_fastconformer_hybrid_large_
streaming_multi) this builds the model with fixed seeds, makes its weights lively
(tools/subword_models.py), exports it with cache support at its largest look-ahead
(tools/export_nemo.py export_onnx(cache_aware=True)) and writes the description with its
`streaming` section. Then, for every look-ahead and both long clips of
tests/fixtures/subword-models/long_clips.json (25 and 68 s), it runs NeMo's own cache-aware
streaming: `CacheAwareStreamingAudioBuffer(pad_and_drop_preencoded=True)` and
`conformer_stream_step` step by step, as examples/asr/asr_cache_aware_streaming/
speech_to_text_cache_aware_streaming_infer.py --pad_and_drop_preencoded does (drop_extra_pre_encoded
on every step, keep_all_outputs on the last), and checks that the exported graph, run chunk by
chunk by `onnx_stream` below from the description alone (the algorithm of docs/CACHE_AWARE.md),
gives NeMo's step inputs bit for bit, its per-step log-probs within 1e-4 and its text.

Written into tests/fixtures/cache-aware/ (the look-aheads [70,13] = 1040 ms and [70,0] = 0 ms):

  clips.json, feature_sums.npy   per long clip: samples, the stream's feature frames (NeMo's
                                 buffer: the STFT columns, the last one 0.0), and the sum over the
                                 80 bands of every frame (float32), to check a frontend against
  <family>/model.onnx, model.json    the cache-support graph and its description
  <family>/manifest.json         per run (clip x look-ahead): steps, input widths, output frames
                                 per step, the cache length after each step, NeMo's greedy tokens,
                                 their frames and text, the argmax of every frame, which steps
                                 rows.npy holds; and the measurements below
  <family>/frames.npy            every frame of every run: [max log-prob, second largest, blank
                                 log-prob] (float32)
  <family>/rows.npy              the full log-prob rows of a few steps per run (25 s clip: the
                                 first, the first with a full attention cache, the last; 68 s
                                 clip: the last)

Measurements (manifest `measurements`, and printed):
  - one graph for all look-aheads: the graph exported at [70,13] against NeMo at every
    look-ahead; a graph exported at each look-ahead against the same; the [70,0] graph run with
    [70,13]'s chunks (it cannot: NeMo bakes the chunk into the mask and the kept frames);
  - NeMo's default first step (pad_and_drop_preencoded False: the first chunk is 1 + 8r frames
    without the pre-encode cache and nothing is dropped) against the whole-utterance forward and
    against pad-and-drop; and a second graph exported with drop_extra_pre_encoded 0 for that
    first step, which reproduces it;
  - mutations of the ONNX algorithm (no pre-encode cache, caches not fed back, cache length not
    fed back, no final zero frame) and how far each moves the log-probs.

--check-onnx is the executable specification for the engine: it reads only the committed
fixtures (model.onnx, model.json, manifest.json, frames.npy, rows.npy), computes the stream
features with NeMo's preprocessor from the description's frontend settings (no weights), runs
the graph step by step as the description says, decodes greedily with the tokenizer's pieces and
compares with NeMo's numbers; then shows that each mutation fails that comparison.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_nemo  # noqa: E402
import nemo_parity  # noqa: E402
import subword_models  # noqa: E402  (build, lively, long clips, write_json)

ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "cache-aware")

FAMILIES = {
    "ctc": {"config": "fastconformer_ctc_streaming_tiny.yaml", "tokenizer": "unigram_pc", "seed": 2601, "gain": 4.0, "blank_bias": 1.5},
    "hybrid": {"config": "fastconformer_hybrid_streaming_tiny.yaml", "tokenizer": "unigram128", "seed": 2603, "gain": 4.0, "blank_bias": 1.5, "hybrid": True},
}
# The look-aheads whose runs are written (the others are checked only): the largest and the
# smallest, 1040 and 0 ms.
FIXTURE_LOOK_AHEADS = ([70, 13], [70, 0])
TOLERANCE = 1e-4
MUTATIONS = ("no_pre_encode_cache", "caches_not_fed_back", "cache_len_not_fed_back", "no_final_zero_frame")


# --------------------------------------------------------------------------------------------
# NeMo's cache-aware streaming


def nemo_stream(model, audio: np.ndarray, ctx: list, pad_and_drop: bool = True) -> dict:
    """NeMo's own cache-aware streaming of one clip at look-ahead `ctx`: the example script's
    perform_streaming for one stream (CacheAwareStreamingAudioBuffer, get_initial_cache_state,
    conformer_stream_step with drop_extra_pre_encoded as calc_drop_extra_pre_encoded gives it,
    keep_all_outputs on the last step). Returns the stream's features, every step's input and
    log-probs (cut to the frames the step adds) and the final text."""
    import torch
    from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

    enc = model.encoder
    enc.set_default_att_context_size(ctx)
    try:
        buf = CacheAwareStreamingAudioBuffer(model=model, online_normalization=False, pad_and_drop_preencoded=pad_and_drop)
        buf.append_audio(audio, stream_id=-1)
        cache_channel, cache_time, cache_len = enc.get_initial_cache_state(batch_size=1)
        pred, texts, steps = None, None, []
        for step, (chunk, chunk_len) in enumerate(iter(buf)):
            drop = 0 if step == 0 and not pad_and_drop else enc.streaming_cfg.drop_extra_pre_encoded
            before = 0 if pred is None else len(pred[0])
            fed = chunk[0].numpy().copy(), int(chunk_len[0])
            with torch.no_grad():
                pred, texts, cache_channel, cache_time, cache_len, _, logp, _ = model.conformer_stream_step(
                    processed_signal=chunk,
                    processed_signal_length=chunk_len,
                    cache_last_channel=cache_channel,
                    cache_last_time=cache_time,
                    cache_last_channel_len=cache_len,
                    keep_all_outputs=buf.is_buffer_empty(),
                    previous_pred_out=pred,
                    drop_extra_pre_encoded=drop,
                    return_transcription=True,
                    return_log_probs=True,
                )
            added = len(pred[0]) - before
            steps.append({"input": fed[0], "length": fed[1], "drop": int(drop), "logprobs": logp[0, :added].numpy().copy(),
                          "cache_len": int(cache_len[0])})
        text = texts[0].text if hasattr(texts[0], "text") else str(texts[0])
        return {"features": buf.buffer[0].numpy().copy(), "steps": steps, "text": text,
                "pred": [int(t) for t in pred[0]]}
    finally:
        enc.set_default_att_context_size(list(enc.att_context_size_all[0]))


def nemo_offline(model, feats: np.ndarray) -> np.ndarray:
    """The whole-utterance forward (chunked_limited mask over the whole clip): [T', V]."""
    import torch

    logp, _ = subword_models.forward_logprobs(model, torch.from_numpy(feats)[None])
    return logp[0].numpy()


def nemo_text(model, logprobs: np.ndarray) -> str:
    """NeMo's text of a run's log-probs: the CTC decoding of the concatenated argmax, the call
    conformer_stream_step makes (ctc_decoder_predictions_tensor on the predictions)."""
    import torch

    pred = torch.from_numpy(logprobs.argmax(-1))[None]
    with torch.no_grad():
        hyps = export_nemo.ctc_decoding(model).ctc_decoder_predictions_tensor(
            decoder_outputs=pred, decoder_lengths=torch.tensor([pred.shape[1]]), return_hypotheses=False
        )
    h = hyps[0]
    return h.text if hasattr(h, "text") else str(h)


# --------------------------------------------------------------------------------------------
# the engine's algorithm (docs/CACHE_AWARE.md), from the description alone


def look_ahead_entry(streaming: dict, ctx: list) -> dict:
    for entry in streaming["look_aheads"]:
        if entry["att_context_size"] == list(ctx):
            return entry
    raise SystemExit(f"look-ahead {ctx} is not in the description's {[e['att_context_size'] for e in streaming['look_aheads']]}")


def plan_steps(frames: int, streaming: dict, entry: dict) -> list:
    """(start, width) of every step over a stream of `frames` feature frames: chunks of
    chunk_frames every shift_frames; the last one may be shorter, and one shorter than
    min_chunk_frames is not run (NeMo's buffer stops there; the first step needs 1 frame)."""
    steps, start = [], 0
    while start < frames:
        width = min(entry["chunk_frames"], frames - start)
        if width < (1 if start == 0 else streaming["min_chunk_frames"]):
            break
        steps.append((start, width))
        start += entry["shift_frames"]
    return steps


def step_input(feats: np.ndarray, start: int, width: int, streaming: dict, mutation: str = None) -> np.ndarray:
    """One step's audio_signal [1, F, pre + width]: the pre_encode_cache_frames frames before the
    chunk (zeros where the stream has none: all of them on the first step), then the chunk."""
    pre = streaming["pre_encode_cache_frames"]
    cache = feats[:, max(0, start - pre):start]
    if mutation == "no_pre_encode_cache":
        cache = cache[:, :0]
    cache = np.concatenate([np.zeros((feats.shape[0], pre - cache.shape[1]), np.float32), cache], axis=1)
    return np.concatenate([cache, feats[:, start:start + width]], axis=1)[None].astype(np.float32)


def initial_caches(streaming: dict) -> dict:
    dtypes = {"float32": np.float32, "int64": np.int64}
    return {c["input"]: np.full(c["shape"], c["initial"], dtypes[c["dtype"]]) for c in streaming["caches"]}


def onnx_stream(sess, feats: np.ndarray, streaming: dict, ctx: list, mutation: str = None) -> dict:
    """The graph run chunk by chunk over the stream features `feats` [F, frames] at look-ahead
    `ctx`, feeding each step's cache outputs back as the next step's inputs. Returns the steps'
    inputs, their log-probs (the first encoded_lengths frames of each) and cache lengths."""
    entry = look_ahead_entry(streaming, ctx)
    if mutation == "no_final_zero_frame":
        feats = feats[:, :-1]
    caches = initial_caches(streaming)
    steps = []
    for start, width in plan_steps(feats.shape[1], streaming, entry):
        x = step_input(feats, start, width, streaming, mutation)
        if mutation == "caches_not_fed_back":
            caches = initial_caches(streaming)
        feed = {streaming["features_input"]: x, streaming["length_input"]: np.array([x.shape[-1]], np.int64), **caches}
        names = [streaming["logprobs_output"], streaming["length_output"]] + [c["output"] for c in streaming["caches"]]
        out = dict(zip(names, sess.run(names, feed)))
        n = int(out[streaming["length_output"]][0])
        caches = {c["input"]: out[c["output"]] for c in streaming["caches"]}
        if mutation == "cache_len_not_fed_back":
            caches["cache_last_channel_len"] = initial_caches(streaming)["cache_last_channel_len"]
        steps.append({"start": start, "width": width, "input": x[0], "logprobs": out[streaming["logprobs_output"]][0, :n],
                      "cache_len": int(out["cache_last_channel_next_len"][0])})
    return {"steps": steps}


def session(path: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def greedy(logprobs: np.ndarray, blank: int) -> tuple:
    """Greedy CTC over a run's concatenated log-probs: the argmax of every frame, then pieces that
    are not blank and not the previous frame's argmax (the previous frame may be the last of the
    previous chunk). Returns (tokens, their frames)."""
    am = logprobs.argmax(-1)
    frames = [t for t in range(len(am)) if am[t] != blank and (t == 0 or am[t] != am[t - 1])]
    return [int(am[t]) for t in frames], frames


def concat(steps: list) -> np.ndarray:
    return np.concatenate([s["logprobs"] for s in steps], axis=0)


def max_diff(a: list, b: list) -> float:
    """Largest |a - b| over the steps' log-probs; inf when the steps' frame counts differ."""
    if [s["logprobs"].shape for s in a] != [s["logprobs"].shape for s in b]:
        return float("inf")
    return max(float(np.abs(x["logprobs"] - y["logprobs"]).max()) for x, y in zip(a, b))


def rounded(x: float) -> float:
    return float(f"{x:.3g}") if np.isfinite(x) else x


# --------------------------------------------------------------------------------------------
# generation


def stream_clips(audio_dir: str) -> list:
    return [(r["name"], subword_models.long_clip(r, audio_dir).astype(np.float32) / 32768.0) for r in subword_models.LONG_CLIPS]


def export_at(model, ctx: list, path: str, drop_extra_pre_encoded: int = None) -> None:
    """A cache-support graph exported at look-ahead `ctx` (optionally with another
    drop_extra_pre_encoded baked in), for the measurements; the model is left as it was."""
    enc = model.encoder
    default = [int(v) for v in enc.att_context_size]
    enc.set_default_att_context_size(ctx)
    model.set_export_config({"cache_support": True})
    if drop_extra_pre_encoded is not None:
        enc.streaming_cfg.drop_extra_pre_encoded = drop_extra_pre_encoded
    try:
        export_nemo._export(model, path)
    finally:
        model.set_export_config({"cache_support": False})
        enc.set_default_att_context_size(default)


def first_step_graph_run(first, main, feats: np.ndarray, streaming: dict, entry: dict) -> list:
    """NeMo's default first step with two graphs: the first chunk (nemo_chunk_size[0] frames, no
    pre-encode cache) through `first` (exported with drop_extra_pre_encoded 0), the rest as usual
    through `main`, starting nemo_shift_size[0] frames in."""
    caches = initial_caches(streaming)
    names = [streaming["logprobs_output"], streaming["length_output"]] + [c["output"] for c in streaming["caches"]]
    steps, start, step = [], 0, 0
    while start < feats.shape[1]:
        width = min(entry["nemo_chunk_size"][0] if step == 0 else entry["chunk_frames"], feats.shape[1] - start)
        if width < (1 if step == 0 else streaming["min_chunk_frames"]):
            break
        x = feats[None, :, :width] if step == 0 else step_input(feats, start, width, streaming)
        out = dict(zip(names, (first if step == 0 else main).run(
            names, {"audio_signal": x, "length": np.array([x.shape[-1]], np.int64), **caches})))
        caches = {c["input"]: out[c["output"]] for c in streaming["caches"]}
        steps.append({"logprobs": out["logprobs"][0, :int(out["encoded_lengths"][0])]})
        start += entry["nemo_shift_size"][0] if step == 0 else entry["shift_frames"]
        step += 1
    return steps


def run_family(name: str, family: dict, clips: list, audio_dir: str, out: str) -> dict:
    import nemo
    import torch

    torch.set_grad_enabled(False)
    model = subword_models.build(family)
    calib = [nemo_parity.nemo_features(model, nemo_parity.load_audio(p))[0] for p in nemo_parity.clip_paths(audio_dir)]
    subword_models.lively(model, family, calib)
    n_params = sum(p.numel() for p in model.parameters())
    hybrid = export_nemo.is_hybrid(model)

    dest = os.path.join(out, name)
    os.makedirs(dest, exist_ok=True)
    onnx_path = os.path.join(dest, "model.onnx")
    kind = "hybrid RNN-T/CTC test model (exported with its CTC head)" if hybrid else "CTC test model"
    desc = (
        f"Tiny cache-aware streaming {type(model.encoder).__name__} sub-word {kind} (tools/configs/{family['config']}, "
        f"tokenizer tests/fixtures/subword/{family['tokenizer']}; {n_params} parameters) with RANDOM weights "
        f"(seed {family['seed']}). A test fixture for exact parity with NeMo, not a speech recogniser."
    )
    sidecar = export_nemo.build_sidecar(model, "zeros", desc, cache_aware=True)
    io = export_nemo.export_onnx(model, onnx_path, cache_aware=True)
    sidecar["streaming"] = export_nemo.cache_aware_section(model, io)
    export_nemo.write_sidecar(sidecar, onnx_path)
    streaming = sidecar["streaming"]
    blank = len(sidecar["labels"])
    sess = session(onnx_path)
    print(f"{name}: {n_params} params, onnx {os.path.getsize(onnx_path)} bytes, opset {io['opset']}, exported at "
          f"{streaming['exported_att_context_size']}, {blank} pieces + blank")

    man = {
        "family": name,
        "nemo_version": nemo.__version__,
        "generator": "tools/cache_aware_fixtures.py",
        "model_class": type(model).__name__,
        "config": f"tools/configs/{family['config']}",
        "tokenizer": f"subword/{family['tokenizer']}",
        "seed": family["seed"],
        "params": n_params,
        "model": "model.onnx",
        "blank_id": int(export_nemo.ctc_decoding(model).blank_id),
        "reference": "NeMo CacheAwareStreamingAudioBuffer(online_normalization=False, pad_and_drop_preencoded=True) "
        "+ conformer_stream_step(drop_extra_pre_encoded=streaming_cfg.drop_extra_pre_encoded, keep_all_outputs on the "
        "last step, return_log_probs=True), as speech_to_text_cache_aware_streaming_infer.py --pad_and_drop_preencoded; "
        "text: the transcription of the last step (CTC decoding of the concatenated argmax)",
        "frames_columns": ["max log-prob", "second largest log-prob", "blank log-prob"],
        "runs": [],
    }
    if hybrid:
        man["exported_head"] = "ctc (set_export_config decoder_type ctc; cur_decoder ctc)"

    # The stream features NeMo's buffer computes are the ones clips.json describes (the
    # preprocessor from the config alone, as --check-onnx computes them).
    feats_of = stream_features_from_config(model.cfg.preprocessor)
    frames_rows, full_rows = [], []
    worst = 0.0
    one_graph = {}
    nemo_runs = {}
    for entry in streaming["look_aheads"]:
        ctx = entry["att_context_size"]
        for clip, audio in clips:
            ref = nemo_stream(model, audio, ctx)
            nemo_runs[(clip, tuple(ctx))] = ref
            if not np.array_equal(ref["features"], feats_of(audio)):
                raise SystemExit(f"{name} {clip}: NeMo's buffer holds other features than the preprocessor's")
            run = onnx_stream(sess, ref["features"], streaming, ctx)
            if len(run["steps"]) != len(ref["steps"]):
                raise SystemExit(f"{name} {clip} {ctx}: {len(run['steps'])} steps, NeMo ran {len(ref['steps'])}")
            for i, (a, b) in enumerate(zip(run["steps"], ref["steps"])):
                if not np.array_equal(a["input"], b["input"]) or a["input"].shape[-1] != b["length"]:
                    raise SystemExit(f"{name} {clip} {ctx} step {i}: the input differs from NeMo's buffer's")
                if a["cache_len"] != b["cache_len"]:
                    raise SystemExit(f"{name} {clip} {ctx} step {i}: cache length {a['cache_len']} != NeMo's {b['cache_len']}")
            diff = max_diff(run["steps"], ref["steps"])
            lp = concat(ref["steps"])
            text_onnx = nemo_text(model, concat(run["steps"]))
            if diff > TOLERANCE or text_onnx != ref["text"] or nemo_text(model, lp) != ref["text"]:
                raise SystemExit(f"{name} {clip} {ctx}: ONNX differs from NeMo by {diff} (text equal: {text_onnx == ref['text']})")
            worst = max(worst, diff)
            one_graph.setdefault(str(ctx), {})[clip] = rounded(diff)
            if ctx not in FIXTURE_LOOK_AHEADS:
                continue
            tokens, token_frames = greedy(lp, blank)
            if tokens != [t for i, t in enumerate(ref["pred"]) if t != blank and (i == 0 or t != ref["pred"][i - 1])]:
                raise SystemExit(f"{name} {clip} {ctx}: greedy tokens differ from NeMo's predictions")
            top = np.sort(lp, axis=-1)
            stats = np.stack([top[:, -1], top[:, -2], lp[:, blank]], axis=1)
            full_cache = streaming["caches"][0]["shape"][2]
            cache_full = next(i for i, s in enumerate(ref["steps"]) if s["cache_len"] >= full_cache)
            # Full rows: the first step, the first with a full attention cache and the last of the
            # first clip; the last step of the others (frames.npy covers every frame anyway).
            last = len(ref["steps"]) - 1
            row_steps = sorted({0, cache_full, last}) if clip == clips[0][0] else [last]
            step_frames = [len(s["logprobs"]) for s in ref["steps"]]
            rows = np.concatenate([ref["steps"][i]["logprobs"] for i in row_steps])
            man["runs"].append(
                {
                    "clip": clip,
                    "att_context_size": ctx,
                    "look_ahead_ms": entry["look_ahead_ms"],
                    "stream_frames": int(ref["features"].shape[1]),
                    "steps": len(ref["steps"]),
                    "step_widths": [int(s["input"].shape[-1]) for s in ref["steps"]],
                    "step_output_frames": step_frames,
                    "cache_len_after": [s["cache_len"] for s in ref["steps"]],
                    "frames": int(lp.shape[0]),
                    "frames_offset": sum(len(f) for f in frames_rows),
                    "argmax": [int(a) for a in lp.argmax(-1)],
                    "tokens": tokens,
                    "token_frames": token_frames,
                    "text": ref["text"],
                    "row_steps": row_steps,
                    "rows_offset": sum(len(r) for r in full_rows),
                    "rows": int(rows.shape[0]),
                    "onnx_max_abs_diff": rounded(diff),
                    "min_top2_margin": round(float((top[:, -1] - top[:, -2]).min()), 6),
                }
            )
            frames_rows.append(stats)
            full_rows.append(rows)
            print(f"  {clip} {ctx} ({entry['look_ahead_ms']} ms): {len(ref['steps'])} steps of {entry['chunk_frames']} "
                  f"frames, {lp.shape[0]} output frames, {len(tokens)} tokens, ONNX max|diff| {diff:.2g}, text {ref['text'][:60]!r}...")
    man["measurements"] = measurements(model, streaming, clips, nemo_runs, one_graph, sess)
    np.save(os.path.join(dest, "frames.npy"), np.concatenate(frames_rows).astype("<f4"))
    np.save(os.path.join(dest, "rows.npy"), np.concatenate(full_rows).astype("<f4"))
    subword_models.write_json(os.path.join(dest, "manifest.json"), man, compact_lists=True)
    print(f"  worst ONNX-vs-NeMo difference over every step of every look-ahead: {worst:.2g}")
    return man


def measurements(model, streaming: dict, clips: list, nemo_runs: dict, one_graph: dict, sess) -> dict:
    """The numbers behind docs/CACHE_AWARE.md's claims (see the module doc)."""
    largest = streaming["exported_att_context_size"]
    smallest = min((e["att_context_size"] for e in streaming["look_aheads"]), key=lambda c: c[1])
    result = {"graph_at_largest_vs_nemo": one_graph, "graph_per_look_ahead_vs_nemo": {}}
    with tempfile.TemporaryDirectory(prefix="cache_aware_") as tmp:
        for entry in streaming["look_aheads"]:
            ctx = entry["att_context_size"]
            path = os.path.join(tmp, f"la{ctx[1]}.onnx")
            export_at(model, ctx, path)
            own = session(path)
            result["graph_per_look_ahead_vs_nemo"][str(ctx)] = {
                clip: rounded(max_diff(onnx_stream(own, nemo_runs[(clip, tuple(ctx))]["features"], streaming, ctx)["steps"],
                                       nemo_runs[(clip, tuple(ctx))]["steps"]))
                for clip, _ in clips
            }
        clip0 = clips[0][0]
        ref = nemo_runs[(clip0, tuple(largest))]
        small = session(os.path.join(tmp, f"la{smallest[1]}.onnx"))
        wrong = onnx_stream(small, ref["features"], streaming, largest)["steps"]
        result["graph_at_smallest_run_at_largest"] = {
            "graph": smallest,
            "chunks_of": largest,
            "output_frames_per_full_step": int(len(wrong[0]["logprobs"])),
            "nemo_output_frames_per_full_step": int(len(ref["steps"][0]["logprobs"])),
        }

        # NeMo's default first step (no pad and drop) against the whole-utterance forward and
        # against pad-and-drop, at the default look-ahead; and its two-graph reproduction.
        entry = look_ahead_entry(streaming, largest)
        first_path = os.path.join(tmp, "first.onnx")
        export_at(model, largest, first_path, drop_extra_pre_encoded=0)
        first = session(first_path)
        nopad = {}
        for clip, audio in clips:
            plain = nemo_stream(model, audio, largest, pad_and_drop=False)
            padded = nemo_runs[(clip, tuple(largest))]
            offline = nemo_offline(model, plain["features"])
            lp = concat(plain["steps"])
            two = first_step_graph_run(first, sess, plain["features"], streaming, entry)
            n = min(len(lp), len(offline))
            lp_pad = concat(padded["steps"])
            m = min(len(lp), len(lp_pad))
            nopad[clip] = {
                "nemo_first_step_frames": entry["nemo_chunk_size"][0],
                "vs_whole_utterance_max_abs_diff": rounded(float(np.abs(lp[:n] - offline[:n]).max())),
                "vs_whole_utterance_argmax_differences": int((lp[:n].argmax(-1) != offline[:n].argmax(-1)).sum()),
                "frames": int(len(lp)),
                "pad_and_drop_frames": int(len(lp_pad)),
                "vs_pad_and_drop_max_abs_diff": rounded(float(np.abs(lp[:m] - lp_pad[:m]).max())),
                "vs_pad_and_drop_argmax_differences": int((lp[:m].argmax(-1) != lp_pad[:m].argmax(-1)).sum()),
                "text_equals_pad_and_drop": plain["text"] == padded["text"],
                "two_graphs_vs_nemo_max_abs_diff": rounded(max_diff(two, plain["steps"])),
            }
        result["nemo_default_first_step"] = nopad

    # Mutations of the ONNX algorithm against NeMo, on every fixture run.
    mutations = {}
    for mutation in MUTATIONS:
        per = {}
        for ctx in FIXTURE_LOOK_AHEADS:
            for clip, _ in clips:
                ref = nemo_runs[(clip, tuple(ctx))]
                got = onnx_stream(sess, ref["features"], streaming, ctx, mutation)["steps"]
                a, b = concat(got), concat(ref["steps"])
                n = min(len(a), len(b))
                d = float(np.abs(a[:n] - b[:n]).max())
                per[f"{clip} {ctx}"] = {
                    "max_abs_diff": rounded(d),
                    "argmax_differences": int((a[:n].argmax(-1) != b[:n].argmax(-1)).sum()),
                    "frames": [int(len(a)), int(len(b))],
                    "text_differs": nemo_text(model, a) != ref["text"],
                    "caught": d > TOLERANCE or len(a) != len(b),
                }
        mutations[mutation] = per
        caught = sum(v["caught"] for v in per.values())
        print(f"  mutation {mutation}: caught in {caught} of {len(per)} runs; log-probs move by "
              f"{min(v['max_abs_diff'] for v in per.values()):.3g} to {max(v['max_abs_diff'] for v in per.values()):.3g}, "
              f"frame counts differ in {sum(v['frames'][0] != v['frames'][1] for v in per.values())}, "
              f"text differs in {sum(v['text_differs'] for v in per.values())}")
        # The final zero frame is numerically the subsampling's own zero padding: leaving it out
        # shows only where it adds an output frame (or a step); every other mutation shows everywhere.
        if caught < (1 if mutation == "no_final_zero_frame" else len(per)):
            raise SystemExit(f"mutation {mutation} is not caught: {per}")
    result["mutations"] = mutations
    for ctx, per in result["graph_per_look_ahead_vs_nemo"].items():
        print(f"  graph exported at {ctx}: max|diff| {max(per.values()):.2g}; graph at {largest}: {max(one_graph[ctx].values()):.2g}")
    g = result["graph_at_smallest_run_at_largest"]
    print(f"  graph exported at {g['graph']} with {largest}'s chunks: {g['output_frames_per_full_step']} output frames "
          f"per step instead of {g['nemo_output_frames_per_full_step']}")
    for clip, v in result["nemo_default_first_step"].items():
        print(f"  {clip}: NeMo default first step vs whole utterance {v['vs_whole_utterance_max_abs_diff']:.2g}, "
              f"vs pad-and-drop {v['vs_pad_and_drop_max_abs_diff']:.3g} ({v['vs_pad_and_drop_argmax_differences']} of "
              f"{v['frames']} argmax differ), two graphs vs NeMo {v['two_graphs_vs_nemo_max_abs_diff']:.2g}")
    return result


def write_clips(out: str, audio_dir: str, model_cfg: str) -> None:
    """clips.json + feature_sums.npy: the stream features of each long clip, as NeMo's buffer holds
    them (the preprocessor of `model_cfg`, which both families share)."""
    feats = stream_features_from_config(model_cfg)
    clips, sums = [], []
    for recipe in subword_models.LONG_CLIPS:
        samples = subword_models.long_clip(recipe, audio_dir)
        f = feats(samples.astype(np.float32) / 32768.0)
        clips.append({
            "name": recipe["name"],
            "recipe": "subword-models/long_clips.json",
            "samples": int(len(samples)),
            "stream_frames": int(f.shape[1]),
            "valid_frames": int(len(samples) // 160),
            "last_frame_is_zero": bool(np.all(f[:, -1] == 0.0)),
            "sums_offset": sum(len(s) for s in sums),
        })
        sums.append(f.sum(axis=0))
    subword_models.write_json(os.path.join(out, "clips.json"), {
        "generator": "tools/cache_aware_fixtures.py",
        "features": "NeMo CacheAwareStreamingAudioBuffer.append_audio: the preprocessor (dither 0, pad_to 0, "
        "normalize NA) over the whole clip, every STFT column (1 + floor(samples / 160)), the last masked to 0.0",
        "clips": clips,
    })
    np.save(os.path.join(out, "feature_sums.npy"), np.concatenate(sums).astype("<f4"))


def stream_features_from_config(model_cfg: dict):
    """A function audio -> the stream features [F, frames] exactly as CacheAwareStreamingAudioBuffer
    computes them, from a preprocessor config alone (no model weights)."""
    import copy

    import torch
    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(copy.deepcopy(model_cfg), resolve=True)
    cfg.pop("_target_", None)
    cfg.update({"dither": 0.0, "pad_to": 0})
    pre = AudioToMelSpectrogramPreprocessor(**cfg)
    pre.eval()

    def features(audio: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            f, _ = pre(input_signal=torch.from_numpy(audio)[None], length=torch.Tensor([audio.shape[0]]))
        return f[0].numpy()

    return features


# --------------------------------------------------------------------------------------------
# --check-onnx: the executable specification, from the committed fixtures


def check_onnx(root: str, audio_dir: str) -> int:
    """Run the engine's algorithm from the fixtures alone and compare with NeMo's recorded numbers;
    then show that every mutation fails the same comparison. Returns the number of failures."""
    import sentencepiece as spm
    from omegaconf import OmegaConf

    with open(os.path.join(root, "clips.json"), encoding="utf-8") as f:
        clips_json = json.load(f)
    sums = np.load(os.path.join(root, "feature_sums.npy"))
    recipes = {r["name"]: r for r in subword_models.LONG_CLIPS}
    failures = 0
    for name, family in FAMILIES.items():
        dest = os.path.join(root, name)
        with open(os.path.join(dest, "model.json"), encoding="utf-8") as f:
            desc = json.load(f)
        with open(os.path.join(dest, "manifest.json"), encoding="utf-8") as f:
            man = json.load(f)
        streaming = desc["streaming"]
        frames = np.load(os.path.join(dest, "frames.npy"))
        rows = np.load(os.path.join(dest, "rows.npy"))
        sess = session(os.path.join(dest, "model.onnx"))
        blank = len(desc["labels"])
        sp = spm.SentencePieceProcessor(model_file=os.path.join(FIX, man["tokenizer"], "tokenizer.model"))
        feats_of = stream_features_from_config(OmegaConf.load(os.path.join(HERE, "configs", family["config"])).model.preprocessor)
        cache = {}
        for clip in clips_json["clips"]:
            samples = subword_models.long_clip(recipes[clip["name"]], audio_dir)
            f = feats_of(samples.astype(np.float32) / 32768.0)
            s = sums[clip["sums_offset"]:clip["sums_offset"] + clip["stream_frames"]]
            if f.shape[1] != clip["stream_frames"] or np.abs(f.sum(axis=0) - s).max() > 1e-3:
                print(f"FAIL {name} {clip['name']}: stream features differ from clips.json / feature_sums.npy")
                failures += 1
            cache[clip["name"]] = f

        def compare(run: dict, steps: list) -> tuple:
            """(max |diff| against the recorded stats and rows, text) of one run's steps."""
            lp = concat(steps)
            if [len(s["logprobs"]) for s in steps] != run["step_output_frames"]:
                return float("inf"), None
            top = np.sort(lp, axis=-1)
            stats = np.stack([top[:, -1], top[:, -2], lp[:, blank]], axis=1)
            ref = frames[run["frames_offset"]:run["frames_offset"] + run["frames"]]
            d = float(np.abs(stats - ref).max())
            mine = np.concatenate([steps[i]["logprobs"] for i in run["row_steps"]])
            d = max(d, float(np.abs(mine - rows[run["rows_offset"]:run["rows_offset"] + run["rows"]]).max()))
            tokens, token_frames = greedy(lp, blank)
            if tokens != run["tokens"] or token_frames != run["token_frames"] or [int(a) for a in lp.argmax(-1)] != run["argmax"]:
                d = float("inf")
            return d, sp.decode(tokens)

        for run in man["runs"]:
            steps = onnx_stream(sess, cache[run["clip"]], streaming, run["att_context_size"])["steps"]
            d, text = compare(run, steps)
            ok = d <= TOLERANCE and text == run["text"] and [s["cache_len"] for s in steps] == run["cache_len_after"] \
                and [s["input"].shape[-1] for s in steps] == run["step_widths"]
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name} {run['clip']} {run['att_context_size']}: {len(steps)} steps, "
                  f"max|diff| {d:.2g}, text {'equal' if text == run['text'] else 'DIFFERS'}")
        for mutation in MUTATIONS:
            caught = []
            for run in man["runs"]:
                steps = onnx_stream(sess, cache[run["clip"]], streaming, run["att_context_size"], mutation)["steps"]
                d, text = compare(run, steps)
                caught.append(d > TOLERANCE or text != run["text"])
            # The final 0.0 frame shows only in runs where it adds an output frame or a step.
            good = sum(caught) >= (1 if mutation == "no_final_zero_frame" else len(caught))
            failures += not good
            print(f"{'ok  ' if good else 'FAIL'} {name} mutation {mutation}: caught in {sum(caught)} of {len(caught)} runs")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    ap.add_argument("--audio", default=os.path.join(FIX, "audio"))
    ap.add_argument("--out", default=OUT, help="fixture root (default tests/fixtures/cache-aware)")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    ap.add_argument("--check-onnx", action="store_true",
                    help="run the engine's algorithm on the committed fixtures and compare with NeMo's numbers")
    args = ap.parse_args()
    nemo_parity.quiet_nemo()
    if args.check_onnx:
        failures = check_onnx(args.out, args.audio)
        print(f"{failures} failure(s)")
        sys.exit(1 if failures else 0)
    from omegaconf import OmegaConf

    out = tempfile.mkdtemp(prefix="cache_aware_check_") if args.check else args.out
    os.makedirs(out, exist_ok=True)
    first = FAMILIES[args.only.split(",")[0]]
    write_clips(out, args.audio, OmegaConf.load(os.path.join(HERE, "configs", first["config"])).model.preprocessor)
    clips = stream_clips(args.audio)
    for name in args.only.split(","):
        run_family(name, FAMILIES[name], clips, args.audio, out)
    if args.check:
        bad = subword_models.compare_trees(args.out, out)
        shutil.rmtree(out)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
