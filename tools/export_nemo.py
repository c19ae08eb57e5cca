#!/usr/bin/env python3
"""Export a NeMo CTC checkpoint (QuartzNet, Jasper, ...; sub-word: Citrinet, Conformer-CTC, FastConformer-CTC) to ONNX + the quartznetstt sidecar.

Usage (any NeMo venv, e.g. the one made by tools/setup_nemo.sh):
    /opt/venvs/nemo3/bin/python tools/export_nemo.py stt_en_quartznet15x5.nemo -o models/quartznet15x5.onnx
writes models/quartznet15x5.onnx and models/quartznet15x5.json (same stem, .json).

The sidecar (format "quartznetstt-model/1") tells the Rust element everything it cannot read from
the ONNX graph: the labels (blank is implicit and LAST), the sample rate, the encoder's time
subsampling and the exact feature frontend. Character models get format "quartznetstt-model/1";
sub-word models (EncDecCTCModelBPE with a SentencePiece tokenizer) get "quartznetstt-model/2" with
the pieces as labels, in the tokenizer model's id order (NOT vocab.txt, which is not the id map:
docs/SUBWORD.md section 1), and a `words` section: {"unit": "pieces", "types": {kind: [ids]} for
every kind but normal, "unknown_surface", "remove_extra_whitespaces"}. The engine computes their
log-probs; decoding pieces into words is not wired to the decoders yet (they refuse such a model). The frontend values are taken from the checkpoint's
own preprocessor (cfg.preprocessor, with NeMo's defaults filled in by the instantiated
FilterbankFeatures), and anything the Rust frontend cannot reproduce is rejected here, loudly,
instead of silently producing a model that mis-recognises.

--pad-mode: NeMo <= 2.4 padded the STFT input with reflect padding and counted 1 + floor(L/160)
valid frames; NeMo >= 2.5 (PR #13827) pads with zeros and counts floor(L/160). Which one a model
expects depends on the NeMo version it was TRAINED with, not the one exporting it; every published
QuartzNet checkpoint predates 2.5, hence the default "reflect".

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


def is_subword(model) -> bool:
    """Whether the model is a CTC model over SentencePiece pieces (EncDecCTCModelBPE)."""
    from nemo.collections.asr.models import EncDecCTCModelBPE

    return isinstance(model, EncDecCTCModelBPE)


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
    num_classes = model.decoder.num_classes_with_blank
    if num_classes != len(labels) + 1:
        raise ExportError(f"decoder has {num_classes} outputs but the tokenizer has {len(labels)} pieces + blank")
    blank = getattr(getattr(model, "decoding", None), "blank_id", len(labels))
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

    if not isinstance(model, EncDecCTCModel):
        raise ExportError(
            f"{type(model).__name__} is not an EncDecCTCModel: only CTC models are supported "
            "(RNN-T / TDT / AED / hybrid models need a different decoder)."
        )
    cfg = model.cfg
    if hasattr(model, "tokenizer") or "tokenizer" in cfg:
        raise ExportError(
            f"{type(model).__name__} uses a subword tokenizer (BPE/WPE); only character models are "
            "supported (labels must be single characters)."
        )
    labels = None
    if "decoder" in cfg and cfg.decoder.get("vocabulary", None) is not None:
        labels = list(_plain(cfg.decoder.vocabulary))
    elif cfg.get("labels", None) is not None:
        labels = list(_plain(cfg.labels))
    if not labels:
        raise ExportError("checkpoint config has neither decoder.vocabulary nor labels")
    num_classes = model.decoder.num_classes_with_blank
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
    elif norm in (None, "", "none", "None", False):
        fe["normalize"] = "none"
    else:
        raise ExportError(f"normalize={norm!r} is not supported (per_feature, fixed, none)")
    fe["pad_mode"] = pad_mode
    return fe


def measure_subsampling(model) -> int:
    """Encoder time subsampling, measured with NeMo's own length arithmetic (not guessed from cfg)."""
    import torch

    t = 1600
    feat_in = int(model.cfg.encoder.get("feat_in", model.cfg.preprocessor.get("features", 64)))
    feats = torch.zeros(1, feat_in, t)
    with torch.no_grad():
        _, enc_len = model.encoder(audio_signal=feats, length=torch.tensor([t]))
    factor = t / int(enc_len[0])
    if abs(factor - round(factor)) > 1e-6:
        raise ExportError(f"non-integer encoder subsampling {factor}")
    return int(round(factor))


def build_sidecar(model, pad_mode: str, description: str) -> dict:
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


def export_onnx(model, onnx_path: str) -> dict:
    """NeMo's own export (legacy TorchScript exporter, opset chosen by NeMo); returns I/O summary.

    The export is written into a temporary folder beside onnx_path, then moved: a model over 2 GB
    comes out as the graph plus a file per tensor (torch.onnx.export's external data), gathered
    into onnx_path + ".data" (gather_external_data); the element loads it from onnx_path."""
    import shutil
    import tempfile

    import onnx

    model.eval()
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
        sidecar = build_sidecar(model, args.pad_mode, desc)  # validate BEFORE writing anything
        if args.language_model:
            sidecar["language_model"] = args.language_model
        if args.language:
            sidecar["language"] = args.language
        io = export_onnx(model, args.output)
    except ExportError as e:
        print(f"error: {args.checkpoint}: {e}", file=sys.stderr)
        return 1
    if "length" in io["inputs"]:
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
