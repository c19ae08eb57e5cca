#!/usr/bin/env python3
"""NeMo's own buffered (streaming) CTC inference on the fixture clips: the reference for the
element's streaming windows.

Run with each NeMo venv's python (tools/setup_nemo.sh):

  /opt/venvs/nemo3/bin/python tools/nemo_streaming.py
  /opt/venvs/nemo24/bin/python tools/nemo_streaming.py

For every WAV in tests/fixtures/audio and every window setting (left context, chunk, right
context in ms), it runs `FrameBatchASR` from `nemo.collections.asr.parts.utils.streaming_utils`
(the class NeMo's `speech_to_text_buffered_infer_ctc.py` uses) on the tiny fixture model
(tests/fixtures/models/quartznet-tiny.pt, loaded into THIS NeMo version's model) and writes

  tests/fixtures/nemo-<version>/<clip>.stream-<setting>.logprobs.npy   kept log-probs [N, vocab]
  tests/fixtures/streaming.json                                        settings + transcripts

How our settings map onto FrameBatchASR (docs/STREAMING.md): `frame_len` = chunk,
`total_buffer` = left + chunk + right, `tokens_per_chunk` = chunk frames and `delay` = chunk +
right - 1 output frames, so the kept frames of each buffer are the chunk frames that have
`left` before them and `right` after them in the buffer. The audio is padded with `delay`
output frames of silence, exactly as `FrameBatchASR.read_audio_file` does (computed in
integers here; the script checks it equals NeMo's float formula).

Recorded per clip and setting:
  text          NeMo's text of the kept log-probs of every buffer: the CTC decoding that
                transcribe() uses (model.decoding.ctc_decoder_predictions_tensor) applied to the
                merged log-probs. FrameBatchASR's own greedy_merge output is `merge_text`; they
                differ only where NeMo's decoding drops a space before punctuation.
  text_full_buffers  the same without the last buffer, whose features NeMo pads with 0.0 (not
                silence) when the signal does not fill it: the element stops before it.
  buffers, frames    buffers run and kept frames (frames = buffers * tokens_per_chunk).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nemo_parity  # noqa: E402  (model construction and audio loading shared with the parity tool)

ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "tests", "fixtures")

# (name, left ms, chunk ms, right ms). "default" must be the element's default windows
# (engine/src/config.rs DEFAULT_LEFT_CONTEXT_MS / DEFAULT_CHUNK_MS / DEFAULT_RIGHT_CONTEXT_MS;
# the Rust test checks it); "latency-2000" is what latency=2000 plans.
DEFAULT_SETTINGS = ["default:1200,1000,600", "latency-2000:1000,500,300"]


def parse_setting(spec: str) -> dict:
    name, values = spec.split(":")
    left, chunk, right = (int(v) for v in values.split(","))
    for what, ms in (("left", left), ("chunk", chunk), ("right", right)):
        if ms % 20:
            raise SystemExit(f"{spec}: {what} {ms} ms is not a whole number of 20 ms output frames")
    return {"name": name, "left_ms": left, "chunk_ms": chunk, "right_ms": right}


def frames(ms: int) -> int:
    return ms // 20


class CharTokenizer:
    """What FrameBatchASR needs of `asr_model.tokenizer` (character CTC models have none):
    greedy_merge's ids_to_text, which for characters is the concatenation of the labels."""

    def __init__(self, vocabulary):
        self.vocabulary = list(vocabulary)

    def ids_to_text(self, ids):
        return "".join(self.vocabulary[i] for i in ids)


def run_setting(model, audio: np.ndarray, setting: dict):
    """FrameBatchASR over `audio`; returns (kept log-probs [N, V], merge_text, buffers)."""
    run = frame_batch(model, audio, setting["left_ms"], setting["chunk_ms"], setting["right_ms"])
    return run["logits"], run["merge_text"], run["buffers"]


def frame_batch(model, audio: np.ndarray, left_ms: int, chunk_ms: int, right_ms: int, subsampling: int = 2) -> dict:
    """NeMo's FrameBatchASR over `audio` with windows in ms (each a whole number of output frames
    of `subsampling` feature frames). Returns the kept log-probs of every buffer [N, V]
    (`logits`), FrameBatchASR's own greedy_merge text of all buffers (`merge_text`) and of all but
    the last (`merge_text_full_buffers`), the buffers run and each buffer's output frames."""
    from nemo.collections.asr.parts.utils.streaming_utils import AudioFeatureIterator, FrameBatchASR

    sample_rate = model._cfg.sample_rate
    hop = int(round(model._cfg.preprocessor.window_stride * sample_rate))
    frame_samples = hop * subsampling
    assert (frame_samples * 1000) % sample_rate == 0
    frame_ms = frame_samples * 1000 // sample_rate

    def frames(ms: int) -> int:
        assert ms % frame_ms == 0, f"{ms} ms is not a whole number of {frame_ms} ms output frames"
        return ms // frame_ms

    chunk_s = chunk_ms / 1000
    total_s = (left_ms + chunk_ms + right_ms) / 1000
    tokens = frames(chunk_ms)
    width = frames(left_ms) + tokens + frames(right_ms)
    delay = tokens + frames(right_ms) - 1
    asr = FrameBatchASR(asr_model=model, frame_len=chunk_s, total_buffer=total_s, batch_size=1)
    bufferer = asr.frame_bufferer
    # NeMo derives frame counts with float division and int(); make sure it got ours.
    assert bufferer.n_frame_len == subsampling * tokens, (bufferer.n_frame_len, tokens)
    assert bufferer.feature_buffer_len == subsampling * width, (bufferer.feature_buffer_len, width)
    asr.reset()
    pad = delay * frame_samples
    assert pad == int(delay * (frame_ms / 1000) * sample_rate), "NeMo's float padding differs"
    samples = np.pad(audio, (0, pad))
    reader = AudioFeatureIterator(samples, asr.frame_len, asr.raw_preprocessor, model.device)
    asr.set_frame_reader(reader)
    merge_text, logits = asr.transcribe(tokens, delay, keep_logits=True)
    # Every buffer's output is the whole buffer: L + T + R frames (the kept slice is [L, L + T)).
    assert all(lp.shape[0] == width for lp in asr.all_logits), {lp.shape[0] for lp in asr.all_logits}
    logits = logits.numpy().astype(np.float32)
    assert logits.shape[0] % tokens == 0
    buffers = logits.shape[0] // tokens
    return {
        "logits": logits,
        "merge_text": merge_text,
        "merge_text_full_buffers": asr.greedy_merge(asr.unmerged[: (buffers - 1) * tokens]),
        "buffers": buffers,
        "buffer_frames": width,
    }


def decoded_text(model, logits: np.ndarray) -> str:
    import torch

    lp = torch.from_numpy(logits)[None]
    return nemo_parity.nemo_greedy_text(model, lp, torch.tensor([logits.shape[0]]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=os.path.join(HERE, "configs", "quartznet_tiny.yaml"))
    ap.add_argument("--seed", type=int, default=nemo_parity.DEFAULT_SEED)
    ap.add_argument("--state", default=os.path.join(FIX, "models", "quartznet-tiny.pt"))
    ap.add_argument("--audio", default=os.path.join(FIX, "audio"))
    ap.add_argument("--fixtures", default=FIX)
    ap.add_argument("--manifest", default=os.path.join(FIX, "streaming.json"))
    ap.add_argument("--setting", action="append", help="NAME:LEFT,CHUNK,RIGHT in ms (repeatable)")
    args = ap.parse_args()

    import nemo
    import torch

    nemo_parity.quiet_nemo()
    torch.set_grad_enabled(False)
    version = nemo.__version__
    settings = [parse_setting(s) for s in (args.setting or DEFAULT_SETTINGS)]
    model = nemo_parity.build_model(args.config, args.seed)
    nemo_parity.load_weights(model, args.state)
    if not hasattr(model, "tokenizer"):
        model.tokenizer = CharTokenizer(model.decoder.vocabulary)
    out_dir = os.path.join(args.fixtures, f"nemo-{version}")
    os.makedirs(out_dir, exist_ok=True)

    if os.path.exists(args.manifest):
        with open(args.manifest) as f:
            manifest = json.load(f)
    else:
        manifest = {"model": "models/quartznet-tiny.onnx", "settings": [], "versions": {}}
    manifest["settings"] = settings
    results = manifest["versions"].setdefault(version, {})
    results.clear()
    for path in nemo_parity.clip_paths(args.audio):
        name = os.path.splitext(os.path.basename(path))[0]
        audio = nemo_parity.load_audio(path)
        results[name] = {}
        for setting in settings:
            logits, merge_text, buffers = run_setting(model, audio, setting)
            tokens = frames(setting["chunk_ms"])
            np.save(os.path.join(out_dir, f"{name}.stream-{setting['name']}.logprobs.npy"), logits)
            text = decoded_text(model, logits)
            full = decoded_text(model, logits[: (buffers - 1) * tokens]) if buffers > 1 else ""
            results[name][setting["name"]] = {
                "text": text,
                "merge_text": merge_text,
                "text_full_buffers": full,
                "buffers": buffers,
                "frames": int(logits.shape[0]),
            }
            print(f"{version} {name} {setting['name']}: {buffers} buffers, {logits.shape[0]} frames"
                  f"{'' if text == full else ' (the 0.0-padded last buffer changes the text)'}")
    with open(args.manifest, "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
