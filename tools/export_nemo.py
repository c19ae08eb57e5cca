#!/usr/bin/env python3
"""Export a NeMo CTC checkpoint (QuartzNet, Jasper, ...; sub-word: Citrinet, Conformer-CTC, FastConformer-CTC; the CTC head of a hybrid RNN-T/TDT-CTC model) to ONNX + the quartznetstt sidecar.

Usage (any NeMo venv, e.g. the one made by tools/setup_nemo.sh):
    /opt/venvs/nemo3/bin/python tools/export_nemo.py stt_en_quartznet15x5.nemo -o models/quartznet15x5.onnx
writes models/quartznet15x5.onnx and models/quartznet15x5.json (same stem, .json).

The sidecar (format "quartznetstt-model/1") tells the Rust element everything it cannot read from
the ONNX graph: the labels (blank is implicit and LAST), the sample rate, the encoder's time
subsampling and the exact feature frontend. Character models get format "quartznetstt-model/1";
sub-word models (EncDecCTCModelBPE with a SentencePiece tokenizer) get "quartznetstt-model/2" with
the pieces as labels, in the tokenizer model's id order (NOT vocab.txt, which is not the id map:
docs/SUBWORD.md section 1), and a `words` section: {"unit": "pieces", "types": {kind: [ids]} for
every kind but normal, "unknown_surface", "remove_extra_whitespaces"}. The engine decodes them
greedily (docs/SUBWORD.md section 8).

Hybrid models (EncDecHybridRNNTCTCModel / EncDecHybridRNNTCTCBPEModel: an RNN-T or TDT decoder
plus an auxiliary CTC decoder over the same vocabulary) are exported with their CTC head:
`model.set_export_config({"decoder_type": "ctc"})` switches `cur_decoder` to "ctc" (through
`change_decoding_strategy(decoder_type="ctc")`), which makes `list_export_subnets()` ['self'] and
`output_module` the CTC decoder, so the graph is encoder + CTC decoder with a `logprobs` output
(without it NeMo exports the encoder and the RNN-T decoder+joint instead). The description's
labels are that CTC decoder's vocabulary (for sub-word hybrids: the tokenizer's pieces, checked
equal) and its blank the CTC decoding's.

Conformer-like encoders (ConformerEncoder: Conformer-CTC, FastConformer, Parakeet) give attention
a relative-position table of `pos_emb_max_len` encoded frames (encoder config, default 5000); the
exported graph holds it as a constant: one frame more than it gives wrong log-probs without an
error (0.16 off NeMo's on the tiny Conformer), more an ONNX Runtime broadcast error. The sidecar
records it as `pos_emb_max_len` (encoded = output frames; absent for encoders without one:
Citrinet, QuartzNet, local attention), and the engine refuses windows and offline utterances
longer than it. PyTorch NeMo grows the table whenever forward() sees a longer input (which
measure_subsampling and any earlier inference do) and export freezes whatever it holds, so the
export first resets it to the configured length: the graph's limit is exactly the one recorded.

Cache-aware streaming models (FastConformer trained with causal convolutions and chunked_limited
attention, e.g. stt_en_fastconformer_hybrid_large_streaming_multi; --cache-aware, docs/CACHE_AWARE.md)
are exported with `set_export_config({"cache_support": True})`: the graph takes one chunk of
features plus the encoder's caches (`audio_signal`, `length`, `cache_last_channel`,
`cache_last_time`, `cache_last_channel_len`) and returns the chunk's log-probs, their count and
the caches for the next chunk (`logprobs`, `encoded_lengths`, `*_next`). NeMo bakes the
look-ahead (`att_context_size`) into the graph, but a graph exported at the largest look-ahead of
a multi-look-ahead model runs every smaller one of the same left context exactly (measured by
tools/cache_aware_fixtures.py), so one graph is exported, at the largest. The description gets a
`streaming` section (strategy "cache-aware": chunk, shift and pre-encode cache in feature frames,
the pre-encoded frames the graph drops, cache shapes and initial values, the graph's input and
output names, and per look-ahead its chunk and latency), which an engine without cache-aware
streaming refuses.

The frontend values are taken from the checkpoint's
own preprocessor (cfg.preprocessor, with NeMo's defaults filled in by the instantiated
FilterbankFeatures), and anything the Rust frontend cannot reproduce is rejected here, loudly,
instead of silently producing a model that mis-recognises.

--pad-mode: NeMo <= 2.4 padded the STFT input with reflect padding and counted 1 + floor(L/160)
valid frames; NeMo >= 2.5 (PR #13827) pads with zeros and counts floor(L/160). Which one a model
expects depends on the NeMo version it was TRAINED with, not the one exporting it, and the
checkpoint does not say; the sidecar records the choice as frontend.pad_mode, the same way for
character, sub-word and hybrid models. Every published checkpoint in tools/nvidia_models.tsv
(QuartzNet, Citrinet, Conformer, FastConformer, the hybrids, Parakeet-CTC) predates 2.5, hence
the default "reflect"; tools/subword_models.py passes "zeros" for its models, built with 3.0.

--int8: also write NAME.int8.onnx + NAME.int8.json, the model quantized to int8 with ONNX Runtime
static quantization (tools/quantize_onnx.py, calibrated on features of synthetic training clips made
by the release quartznet-transcribe); 3.8x smaller and about 2.4x faster on one CPU thread, see
docs/INT8.md. --quantize-only MODEL.onnx skips the export and quantizes an exported model (the
same as tools/quantize_onnx.py MODEL.onnx). The element loads NAME.int8.onnx like any other model.

This file is also imported by tools/nemo_parity.py (export_onnx / build_sidecar).
"""
import argparse
import json
import math
import os
import sys

FORMAT = "quartznetstt-model/1"
FORMAT_V2 = "quartznetstt-model/2"
# sentencepiece_model.proto's ModelProto.SentencePiece.Type
PIECE_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}


class ExportError(Exception):
    """A checkpoint that the quartznetstt element cannot run faithfully."""


def _nemo_version() -> str:
    import nemo

    return nemo.__version__


def _plain(x):
    """OmegaConf containers -> plain python (lists/dicts), leave scalars alone."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(x):
            return OmegaConf.to_container(x, resolve=True)
    except ImportError:
        pass
    return x


def is_hybrid(model) -> bool:
    """Whether the model is a hybrid RNN-T/TDT + CTC model (exported with its CTC head)."""
    from nemo.collections.asr.models import EncDecHybridRNNTCTCModel

    return isinstance(model, EncDecHybridRNNTCTCModel)


def is_subword(model) -> bool:
    """Whether the model's CTC output is over SentencePiece pieces (EncDecCTCModelBPE, or the CTC
    head of an EncDecHybridRNNTCTCBPEModel)."""
    from nemo.collections.asr.models import EncDecCTCModelBPE, EncDecHybridRNNTCTCBPEModel

    return isinstance(model, (EncDecCTCModelBPE, EncDecHybridRNNTCTCBPEModel))


def ctc_decoder(model):
    """The CTC decoder (ConvASRDecoder): a hybrid model's auxiliary one, else the decoder."""
    return model.ctc_decoder if is_hybrid(model) else model.decoder


def ctc_decoding(model):
    """The CTC decoding object (blank id, greedy text): a hybrid model's `ctc_decoding`."""
    return model.ctc_decoding if is_hybrid(model) else model.decoding


def use_ctc_head(model):
    """Make a hybrid model export (and decode) with its CTC head: set_export_config's
    decoder_type "ctc" runs change_decoding_strategy(decoder_type="ctc"), so cur_decoder is
    "ctc", list_export_subnets() is ['self'] and output_module the CTC decoder."""
    if is_hybrid(model):
        model.set_export_config({"decoder_type": "ctc"})
        if model.cur_decoder != "ctc" or model.output_module is not model.ctc_decoder:
            raise ExportError(f"{type(model).__name__}: could not switch the export to the CTC head")


def subword_pieces(model) -> tuple:
    """(labels, words) of a SentencePiece CTC model: the pieces in id order as the tokenizer's
    own model holds them, and the sidecar's `words` section. Raises ExportError otherwise."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import SentencePieceTokenizer
    from sentencepiece import sentencepiece_model_pb2 as pb

    tok = getattr(model, "tokenizer", None)
    if not isinstance(tok, SentencePieceTokenizer):
        raise ExportError(
            f"{type(model).__name__} has tokenizer {type(tok).__name__}: only SentencePiece tokenizers "
            "(NeMo tokenizer type 'bpe') are supported; WordPiece ('wpe') is not"
        )
    proto = pb.ModelProto()
    proto.ParseFromString(tok.tokenizer.serialized_model_proto())
    labels = [p.piece for p in proto.pieces]
    types = {}
    for i, p in enumerate(proto.pieces):
        if tok.tokenizer.id_to_piece(i) != p.piece:
            raise ExportError(f"piece {i}: the tokenizer says {tok.tokenizer.id_to_piece(i)!r}, its model {p.piece!r}")
        kind = PIECE_TYPES.get(p.type)
        if kind is None:
            raise ExportError(f"piece {i} ({p.piece!r}) has unknown SentencePiece type {p.type}")
        if kind != "normal":
            types.setdefault(kind, []).append(i)
    decoder = ctc_decoder(model)
    num_classes = decoder.num_classes_with_blank
    if num_classes != len(labels) + 1:
        raise ExportError(f"CTC decoder has {num_classes} outputs but the tokenizer has {len(labels)} pieces + blank")
    vocabulary = getattr(decoder, "vocabulary", None)
    if vocabulary is not None and len(vocabulary) > 0 and list(_plain(vocabulary)) != labels:
        raise ExportError("the CTC decoder's vocabulary is not the tokenizer's pieces in id order")
    blank = getattr(ctc_decoding(model), "blank_id", len(labels))
    if blank != len(labels):
        raise ExportError(f"the CTC blank is {blank}, not the last class {len(labels)}")
    words = {
        "unit": "pieces",
        "types": types,
        "unknown_surface": proto.trainer_spec.unk_surface,
        "remove_extra_whitespaces": bool(proto.normalizer_spec.remove_extra_whitespaces),
    }
    return labels, words


def check_char_ctc(model) -> list:
    """Return the label list (without blank) or raise ExportError for unsupported models."""
    from nemo.collections.asr.models import EncDecCTCModel

    if not isinstance(model, EncDecCTCModel) and not is_hybrid(model):
        raise ExportError(
            f"{type(model).__name__} is not an EncDecCTCModel nor a hybrid RNN-T/TDT-CTC model: only CTC "
            "models and hybrids' CTC heads are supported (RNN-T / TDT / AED models need a different decoder)."
        )
    cfg = model.cfg
    if hasattr(model, "tokenizer") or "tokenizer" in cfg:
        raise ExportError(
            f"{type(model).__name__} uses a subword tokenizer that is not SentencePiece (WPE); only "
            "SentencePiece and character models are supported."
        )
    labels = None
    if is_hybrid(model):
        # The CTC head's own vocabulary (aux_ctc.decoder), which the RNN-T joint shares.
        labels = list(_plain(model.ctc_decoder.vocabulary))
    elif "decoder" in cfg and cfg.decoder.get("vocabulary", None) is not None:
        labels = list(_plain(cfg.decoder.vocabulary))
    elif cfg.get("labels", None) is not None:
        labels = list(_plain(cfg.labels))
    if not labels:
        raise ExportError("checkpoint config has neither decoder.vocabulary nor labels")
    num_classes = ctc_decoder(model).num_classes_with_blank
    if num_classes != len(labels) + 1:
        raise ExportError(f"decoder has {num_classes} outputs but there are {len(labels)} labels + blank")
    for lab in labels:
        if not isinstance(lab, str) or len(lab) != 1:
            raise ExportError(f"label {lab!r} is not a single character: not a char model")
    return labels


def frontend_from_model(model, pad_mode: str) -> dict:
    """Frontend section of the sidecar, from the checkpoint's preprocessor (raises on unsupported)."""
    import torch
    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor

    pre = model.preprocessor
    if not isinstance(pre, AudioToMelSpectrogramPreprocessor):
        raise ExportError(f"preprocessor {type(pre).__name__} is not AudioToMelSpectrogramPreprocessor")
    pcfg = model.cfg.preprocessor
    fz = pre.featurizer  # FilterbankFeatures: holds the effective values (config + NeMo defaults)
    sr = int(pcfg.get("sample_rate", 16000))

    problems = []
    window = pcfg.get("window", "hann")
    if window != "hann":
        problems.append(f"window={window!r} (only 'hann' is implemented)")
    if getattr(fz, "frame_splicing", 1) != 1:
        problems.append(f"frame_splicing={fz.frame_splicing} (only 1)")
    if float(fz.mag_power) != 2.0:
        problems.append(f"mag_power={fz.mag_power} (only 2.0, the power spectrum)")
    if not fz.log:
        problems.append("log=False (only log-mel features)")
    if fz.log_zero_guard_type != "add":
        problems.append(f"log_zero_guard_type={fz.log_zero_guard_type!r} (only 'add')")
    if getattr(fz, "exact_pad", False):
        problems.append("exact_pad=True (only centred STFT framing)")
    mel_norm = pcfg.get("mel_norm", "slaney")
    if mel_norm != "slaney":
        problems.append(f"mel_norm={mel_norm!r} (only 'slaney')")
    if fz.win_length > fz.n_fft:
        problems.append(f"window {fz.win_length} longer than n_fft {fz.n_fft}")
    if problems:
        raise ExportError("frontend settings the Rust frontend cannot reproduce: " + "; ".join(problems))

    guard = fz.log_zero_guard_value
    if isinstance(guard, str):  # "tiny" / "eps" are resolved by NeMo against float32
        guard = {"tiny": torch.finfo(torch.float32).tiny, "eps": torch.finfo(torch.float32).eps}[guard]

    fe = {
        # seconds, as in NeMo's config; the Rust side rounds to samples like NeMo does
        "window_size": fz.win_length / sr,
        "window_stride": fz.hop_length / sr,
        "n_fft": int(fz.n_fft),
        "features": int(fz.nfilt),  # != 64 is allowed; the ONNX input then has that many channels
        "window": "hann",
        "preemph": float(fz.preemph) if fz.preemph is not None else 0.0,
        "lowfreq": float(pcfg.get("lowfreq", 0) or 0),
        "highfreq": float(pcfg.get("highfreq", None) or sr / 2),
        "mag_power": float(fz.mag_power),
        "log": True,
        "log_zero_guard_value": float(guard),
    }
    norm = fz.normalize
    norm = _plain(norm)
    if isinstance(norm, dict) and "fixed_mean" in norm and "fixed_std" in norm:
        fe["normalize"] = "fixed"
        fe["fixed_mean"] = [float(v) for v in norm["fixed_mean"]]
        fe["fixed_std"] = [float(v) for v in norm["fixed_std"]]
        if len(fe["fixed_mean"]) != fe["features"] or len(fe["fixed_std"]) != fe["features"]:
            raise ExportError("fixed_mean/fixed_std length differs from the number of mel features")
    elif norm in ("per_feature",):
        fe["normalize"] = "per_feature"
    elif norm in (None, "", "none", "None", "NA", False):
        # "NA" is what NeMo's cache-aware streaming configs write; normalize_batch leaves the
        # features alone for any type it does not know.
        fe["normalize"] = "none"
    else:
        raise ExportError(f"normalize={norm!r} is not supported (per_feature, fixed, none)")
    fe["pad_mode"] = pad_mode
    return fe


def measure_subsampling(model) -> int:
    """Encoder time subsampling, measured with NeMo's own length arithmetic (not guessed from cfg):
    the output frames that 1600 more input frames add. (Not 1600 / outputs: causal subsampling,
    as cache-aware streaming models have, pads one side only and gives 1600 frames 201 outputs.)"""
    import torch

    feat_in = int(model.cfg.encoder.get("feat_in", model.cfg.preprocessor.get("features", 64)))
    lengths = []
    for t in (1600, 3200):
        feats = torch.zeros(1, feat_in, t)
        with torch.no_grad():
            _, enc_len = model.encoder(audio_signal=feats, length=torch.tensor([t]))
        lengths.append(int(enc_len[0]))
    factor = 1600 / (lengths[1] - lengths[0])
    if abs(factor - round(factor)) > 1e-6:
        raise ExportError(f"non-integer encoder subsampling {factor}")
    return int(round(factor))


def position_limit(model):
    """The encoder's position table length in encoded (= output) frames, `pos_emb_max_len` from
    the encoder config (NeMo's default 5000), for encoders that add a table over the whole input
    to attention (ConformerEncoder with rel_pos or abs_pos attention); None for encoders without
    one (ConvASREncoder: QuartzNet, Citrinet) and for local attention (rel_pos_local_attn),
    whose table spans the attention context only."""
    from nemo.collections.asr.parts.submodules.multi_head_attention import (
        LocalAttRelPositionalEncoding,
        PositionalEncoding,
    )

    pos_enc = getattr(model.encoder, "pos_enc", None)
    if not isinstance(pos_enc, PositionalEncoding) or isinstance(pos_enc, LocalAttRelPositionalEncoding):
        return None
    return int(model.cfg.encoder.get("pos_emb_max_len", 5000))


def reset_position_table(model):
    """Shrink the encoder's position table back to `pos_emb_max_len` frames, so the exported
    graph's limit is the one the sidecar records: PyTorch NeMo grows the table (and
    `max_audio_length`) whenever forward() sees a longer input, which measure_subsampling and any
    earlier inference do, and export freezes whatever it holds. The table is a function of the
    position only, so the outputs of shorter inputs do not change."""
    limit = position_limit(model)
    if limit is None:
        return
    enc = model.encoder
    param = next(enc.parameters())
    del enc.pos_enc.pe  # a buffer: extend_pe rebuilds it at exactly this length
    enc.pos_enc.extend_pe(limit, param.device, param.dtype)
    enc.max_audio_length = limit


# The graph's inputs and outputs when exported with cache support, and which output is the next
# step's value of which input (ExportableEncDecModel.forward_for_export with the encoder's
# export_cache_support; the caches are batch-first there).
CACHE_AWARE_INPUTS = ["audio_signal", "length", "cache_last_channel", "cache_last_time", "cache_last_channel_len"]
CACHE_AWARE_OUTPUTS = [
    "logprobs",
    "encoded_lengths",
    "cache_last_channel_next",
    "cache_last_time_next",
    "cache_last_channel_next_len",
]


def cache_aware_look_aheads(model) -> list:
    """The encoder's look-aheads (`att_context_size_all`: [left, right] in output frames), checked
    to be ones the cache-aware scheme of docs/CACHE_AWARE.md runs exactly with one graph; raises
    ExportError for an encoder that cannot stream that way."""
    from nemo.collections.asr.parts.mixins.streaming import StreamingEncoder
    from nemo.collections.asr.parts.submodules.subsampling import ConvSubsampling

    enc = model.encoder
    if not isinstance(enc, StreamingEncoder) or not hasattr(enc, "att_context_size_all"):
        raise ExportError(f"{type(enc).__name__} is not a cache-aware streaming encoder (ConformerEncoder)")
    problems = []
    if enc.att_context_style != "chunked_limited":
        problems.append(f"att_context_style {enc.att_context_style!r} (only 'chunked_limited')")
    if list(enc.conv_context_size)[1] != 0:
        problems.append(f"conv_context_size {list(enc.conv_context_size)} (only causal convolutions, [k - 1, 0])")
    pre = enc.pre_encode
    if not isinstance(pre, ConvSubsampling) or not getattr(pre, "is_causal", False):
        problems.append(f"pre-encoder {type(pre).__name__} (only causal conv subsampling: causal_downsampling true)")
    elif not isinstance(pre.get_sampling_frames(), list) or not isinstance(pre.get_streaming_cache_size(), list):
        problems.append("pre-encoder without NeMo's first-step/later-step frame counts")
    if getattr(enc, "reduction_position", None) is not None:
        problems.append("time reduction inside the encoder (NeMo cannot cache it either)")
    look_aheads = [[int(v) for v in c] for c in enc.att_context_size_all]
    if any(len(c) != 2 or c[0] < 0 or c[1] < 0 for c in look_aheads):
        problems.append(f"att_context_size {look_aheads} (needs [left >= 0, right >= 0] pairs)")
    elif len({c[0] for c in look_aheads}) != 1:
        problems.append(f"att_context_size {look_aheads} has several left contexts (one graph per cache size)")
    if problems:
        raise ExportError("not a cache-aware streaming model the engine can run: " + "; ".join(problems))
    return look_aheads


def largest_look_ahead(model) -> list:
    """The look-ahead to export at: the largest right context. A chunked_limited graph exported at
    it runs every smaller look-ahead of the same left context exactly (the left context is a
    whole number of chunks of each, so a chunk of any of them sees the whole cache and itself,
    and the graph keeps up to its own chunk's frames); one exported at a smaller one cuts a
    larger chunk's output to its own size and hides later frames of the chunk from earlier ones."""
    return max(cache_aware_look_aheads(model), key=lambda c: c[1])


def cache_aware_section(model, io: dict) -> dict:
    """The description's `streaming` section for a graph exported with cache support (see
    docs/CACHE_AWARE.md for how an engine runs it). Every number is NeMo's own: the encoder's
    setup_streaming_params() for each look-ahead and get_initial_cache_state()."""
    enc = model.encoder
    look_aheads = cache_aware_look_aheads(model)
    if io["inputs"] != CACHE_AWARE_INPUTS or io["outputs"] != CACHE_AWARE_OUTPUTS:
        raise ExportError(f"unexpected cache-aware ONNX I/O: inputs {io['inputs']}, outputs {io['outputs']}")
    default = [int(v) for v in enc.att_context_size]
    hop_ms = 1000.0 * model.preprocessor.featurizer.hop_length / int(model.cfg.preprocessor.get("sample_rate", 16000))
    if abs(hop_ms - round(hop_ms)) > 1e-9:
        raise ExportError(f"feature hop of {hop_ms} ms is not a whole number of milliseconds")
    hop_ms = int(round(hop_ms))
    sampling_frames = list(enc.pre_encode.get_sampling_frames())
    entries = []
    shared = None
    try:
        for ctx in look_aheads:
            enc.setup_streaming_params(att_context_size=ctx)
            cfg = enc.streaming_cfg
            common = {
                "pre_encode_cache_size": list(cfg.pre_encode_cache_size),
                "drop_extra_pre_encoded": int(cfg.drop_extra_pre_encoded),
                "last_channel_cache_size": int(cfg.last_channel_cache_size),
                "cache_drop_size": int(cfg.cache_drop_size),
            }
            if shared is None:
                shared = common
            elif common != shared:
                raise ExportError(f"look-ahead {ctx} has other cache settings than {look_aheads[0]}: {common} != {shared}")
            if cfg.chunk_size[1] != cfg.shift_size[1]:
                raise ExportError(f"look-ahead {ctx}: chunk {cfg.chunk_size} and shift {cfg.shift_size} differ")
            chunk = int(cfg.chunk_size[1])
            entries.append(
                {
                    "att_context_size": ctx,
                    "look_ahead_ms": ctx[1] * enc.subsampling_factor * hop_ms,
                    "chunk_frames": chunk,
                    "shift_frames": int(cfg.shift_size[1]),
                    "output_frames": int(cfg.valid_out_len),
                    "chunk_ms": chunk * hop_ms,
                    "nemo_chunk_size": [int(v) for v in cfg.chunk_size],
                    "nemo_shift_size": [int(v) for v in cfg.shift_size],
                }
            )
    finally:
        enc.setup_streaming_params()  # back to the default look-ahead's
    if shared["cache_drop_size"] != 0:
        raise ExportError(f"cache_drop_size {shared['cache_drop_size']} (chunked_limited drops nothing)")
    layers = len(enc.layers)
    return {
        "strategy": "cache-aware",
        "exported_att_context_size": largest_look_ahead(model),
        "default_att_context_size": default,
        "first_step": "pad-and-drop",
        "pre_encode_cache_frames": int(shared["pre_encode_cache_size"][1]),
        "drop_extra_pre_encoded": shared["drop_extra_pre_encoded"],
        "min_chunk_frames": int(sampling_frames[1]),
        "features_input": "audio_signal",
        "length_input": "length",
        "logprobs_output": "logprobs",
        "length_output": "encoded_lengths",
        "caches": [
            {
                "input": "cache_last_channel",
                "output": "cache_last_channel_next",
                "shape": [1, layers, shared["last_channel_cache_size"], int(enc.d_model)],
                "dtype": "float32",
                "initial": 0,
            },
            {
                "input": "cache_last_time",
                "output": "cache_last_time_next",
                "shape": [1, layers, int(enc.d_model), int(enc.conv_context_size[0])],
                "dtype": "float32",
                "initial": 0,
            },
            {
                "input": "cache_last_channel_len",
                "output": "cache_last_channel_next_len",
                "shape": [1],
                "dtype": "int64",
                "initial": 0,
            },
        ],
        "look_aheads": entries,
    }


def build_sidecar(model, pad_mode: str, description: str, cache_aware: bool = False) -> dict:
    words = None
    if is_subword(model):
        labels, words = subword_pieces(model)
    else:
        labels = check_char_ctc(model)
    frontend = frontend_from_model(model, pad_mode)  # before running the encoder: clearer errors
    sidecar = {
        "format": FORMAT if words is None else FORMAT_V2,
        "description": description,
        "labels": labels,
        "sample_rate": int(model.cfg.preprocessor.get("sample_rate", 16000)),
        "subsampling_factor": measure_subsampling(model),
        "frontend": frontend,
        "nemo_version": _nemo_version(),
    }
    if words is not None:
        sidecar["words"] = words
    limit = position_limit(model)
    if limit is not None:
        if words is None:
            sidecar["format"] = FORMAT_V2  # pos_emb_max_len is a version 2 field
        sidecar["pos_emb_max_len"] = limit
    if cache_aware:
        largest_look_ahead(model)  # refuse an encoder that cannot stream before exporting anything
    return sidecar


def _graph_tensors(graph):
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def gather_external_data(src_path: str, dst_path: str) -> int:
    """Writes dst_path (the graph) and dst_path + ".data" (every external tensor of src_path, one
    after the other, each at a 4 KiB boundary) and returns the number of bytes gathered; 0 (and
    nothing written) when src_path holds all its tensors itself.

    torch.onnx.export writes a model over 2 GB (Parakeet-CTC 0.6B and 1.1B) as the graph plus one
    file per weight tensor, named after the tensor, in the graph's folder; two exports into one
    folder would overwrite each other's files. Gathered, a model is two files beside its
    description: NAME.onnx and NAME.onnx.data. One tensor is in memory at a time."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    m = onnx.load(src_path, load_external_data=False)
    tensors = [t for t in _graph_tensors(m.graph) if uses_external_data(t)]
    if not tensors:
        return 0
    src_dir = os.path.dirname(os.path.abspath(src_path))
    data_name = os.path.basename(dst_path) + ".data"
    data_path = os.path.join(os.path.dirname(os.path.abspath(dst_path)), data_name)
    with open(data_path, "wb") as out:
        for t in tensors:
            info = ExternalDataInfo(t)
            with open(os.path.join(src_dir, info.location), "rb") as f:
                f.seek(info.offset or 0)
                data = f.read(info.length) if info.length else f.read()
            out.write(b"\0" * (-out.tell() % 4096))
            offset = out.tell()
            out.write(data)
            del t.external_data[:]
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(data)))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
        total = out.tell()
    onnx.save(m, dst_path)
    return total


def export_onnx(model, onnx_path: str, cache_aware: bool = False) -> dict:
    """NeMo's own export (legacy TorchScript exporter, opset chosen by NeMo); returns I/O summary.
    With `cache_aware`: the streaming graph (cache support), exported at the largest look-ahead,
    after which the encoder's default look-ahead is set again."""
    model.eval()
    use_ctc_head(model)
    reset_position_table(model)
    if cache_aware:
        default = [int(v) for v in model.encoder.att_context_size]
        model.encoder.set_default_att_context_size(largest_look_ahead(model))
        model.set_export_config({"cache_support": True})  # runs setup_streaming_params()
        try:
            return _export(model, onnx_path)
        finally:
            model.set_export_config({"cache_support": False})
            model.encoder.set_default_att_context_size(default)
    return _export(model, onnx_path)


def _export(model, onnx_path: str) -> dict:
    """model.export() into onnx_path; returns I/O summary.

    The export is written into a temporary folder beside onnx_path, then moved: a model over 2 GB
    comes out as the graph plus a file per tensor (torch.onnx.export's external data), gathered
    into onnx_path + ".data" (gather_external_data); the element loads it from onnx_path."""
    import shutil
    import tempfile

    import onnx

    out_dir = os.path.dirname(os.path.abspath(onnx_path))
    os.makedirs(out_dir, exist_ok=True)
    data_path = onnx_path + ".data"
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        tmp_path = os.path.join(tmp, os.path.basename(onnx_path))
        try:
            model.export(tmp_path)
        except ModuleNotFoundError as e:
            # NeMo <= 2.4 calls torch.onnx.export() without dynamo=False; torch >= 2.9 then defaults to
            # the dynamo exporter, which needs onnxscript. NeMo 3.0 forces the TorchScript exporter.
            raise ExportError(
                f"model.export() failed ({e}); export with the NeMo 3.0 venv (tools/requirements-nemo3.txt)"
            ) from e
        if os.path.exists(data_path):
            os.remove(data_path)  # a previous export's weights, which this graph does not use
        external = gather_external_data(tmp_path, onnx_path)
        if not external:
            shutil.move(tmp_path, onnx_path)
    m = onnx.load(onnx_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    inputs = [i.name for i in m.graph.input if i.name not in inits]
    outputs = [o.name for o in m.graph.output]
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if "audio_signal" not in inputs or "logprobs" not in outputs:
        raise ExportError(f"unexpected ONNX I/O: inputs {inputs}, outputs {outputs}")
    return {"inputs": inputs, "outputs": outputs, "opset": opset, "external_data_bytes": external}


def write_sidecar(sidecar: dict, onnx_path: str) -> str:
    path = os.path.splitext(onnx_path)[0] + ".json"
    with open(path, "w") as f:
        json.dump(sidecar, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help=".nemo file of a CTC model (characters or SentencePiece pieces)")
    ap.add_argument("-o", "--output", help="output .onnx path; the sidecar gets the same stem + .json")
    ap.add_argument(
        "--pad-mode",
        choices=["reflect", "zeros"],
        default="reflect",
        help="STFT edge padding the model was TRAINED with: reflect = NeMo <= 2.4 (all published QuartzNets), "
        "zeros = NeMo >= 2.5 (default: reflect)",
    )
    ap.add_argument("--description", default=None, help="free text for the sidecar (default: derived)")
    ap.add_argument("--language-model", default=None,
                    help="ARPA word LM for beam search, as a path relative to the sidecar's folder "
                    "(e.g. quartznet-en.arpa.gz from tools/lm/build_lm.py)")
    ap.add_argument("--language", default="en",
                    help="BCP 47 language tag of the model's transcripts, checked against the element's "
                    "language-code (default: en)")
    ap.add_argument("--cache-aware", action="store_true",
                    help="export a cache-aware streaming FastConformer (causal convolutions, chunked_limited "
                    "attention) with its caches, at its largest look-ahead, and describe it in a `streaming` "
                    "section (docs/CACHE_AWARE.md)")
    ap.add_argument("--int8", action="store_true",
                    help="also write OUTPUT.int8.onnx (+ .json): int8 quantization, docs/INT8.md")
    ap.add_argument("--quantize-only", metavar="MODEL.onnx", default=None,
                    help="no export: quantize this exported model (sidecar beside it) to MODEL.int8.onnx "
                    "(or -o); implies --int8")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import quantize_onnx

    quantize_onnx.add_arguments(ap, standalone=False)
    args = ap.parse_args()
    if args.quantize_only:
        return quantize_onnx.run(args, args.quantize_only, args.output or quantize_onnx.int8_path(args.quantize_only))
    if not args.checkpoint or not args.output:
        ap.error("the checkpoint and -o/--output are required (unless --quantize-only)")
    if args.cache_aware and args.int8:
        ap.error("--int8 calibrates a whole-utterance graph; it cannot quantize a cache-aware one")

    import torch
    from nemo.collections.asr.models import ASRModel

    torch.set_grad_enabled(False)
    try:
        model = ASRModel.restore_from(args.checkpoint, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - re-raise with context
        print(f"error: cannot restore {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    model.eval()
    try:
        n_params = sum(p.numel() for p in model.parameters())
        desc = args.description or (
            f"{type(model).__name__} from {os.path.basename(args.checkpoint)} "
            f"({type(model.encoder).__name__} encoder, {n_params} parameters), "
            f"exported with NeMo {_nemo_version()} model.export()"
        )
        sidecar = build_sidecar(model, args.pad_mode, desc, args.cache_aware)  # validate BEFORE writing anything
        if args.language_model:
            sidecar["language_model"] = args.language_model
        if args.language:
            sidecar["language"] = args.language
        io = export_onnx(model, args.output, args.cache_aware)
        if args.cache_aware:
            sidecar["streaming"] = cache_aware_section(model, io)
    except ExportError as e:
        print(f"error: {args.checkpoint}: {e}", file=sys.stderr)
        return 1
    if args.cache_aware:
        print("note: a cache-aware streaming graph: it runs chunk by chunk with its caches (docs/CACHE_AWARE.md), "
              "not as a whole-utterance model", file=sys.stderr)
    elif "length" in io["inputs"]:
        print("note: the ONNX graph has a `length` input; the element feeds it when present", file=sys.stderr)
    side = write_sidecar(sidecar, args.output)
    size = os.path.getsize(args.output)
    print(f"wrote {args.output} ({size} bytes, opset {io['opset']}, inputs {io['inputs']}, outputs {io['outputs']})")
    if io["external_data_bytes"]:
        print(f"wrote {args.output}.data ({io['external_data_bytes']} bytes: the weights, over ONNX's 2 GB limit for "
              "one file; keep it beside the .onnx, whose path is the model-path)")
    print(f"wrote {side} (pad_mode {args.pad_mode}, {len(sidecar['labels'])} labels + blank)")
    if args.int8:
        return quantize_onnx.run(args, args.output, quantize_onnx.int8_path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
