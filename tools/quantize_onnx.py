#!/usr/bin/env python3
"""Quantize an exported quartznetstt model (ONNX + sidecar) to int8 with ONNX Runtime.

    /opt/venvs/nemo3/bin/python tools/quantize_onnx.py models/quartznet-en.onnx
writes models/quartznet-en.int8.onnx and models/quartznet-en.int8.json (the sidecar, copied; the
element loads the int8 model like any other: model-path=models/quartznet-en.int8.onnx).
tools/export_nemo.py --int8 calls this after exporting. docs/INT8.md has the measurements.

Default scheme (the one docs/INT8.md found fastest within 1 WER point of fp32): static
quantization, QOperator format (QLinearConv), per-channel int8 weights, uint8 activations,
reduce_range (7-bit weights: no vpmaddubsw saturation on AVX2 CPUs without VNNI), MinMax
calibration, with quant_pre_process first; all convolutions quantized. Calibration features are
the model's own input, made by the Rust frontend itself (quartznet-transcribe --offline
--dump-features), so they are exactly what the model sees; take them from TRAINING or synthetic
dev clips, never from an evaluation set.

Other schemes, for comparison: --scheme dynamic (ConvInteger, weights only, no calibration),
--format qdq (QuantizeLinear/DequantizeLinear pairs, fused by ORT at load time),
--no-per-channel, --no-reduce-range, --activations s8, --no-preprocess,
--keep-fp32 first,last (leave the first / last convolution in fp32), --calibrate entropy|percentile.

Needs onnx and onnxruntime (the NeMo 3.0 venv has both); the calibration needs the release
quartznet-transcribe (cargo build --release) unless --features-dir holds ready .npy features.
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(ROOT, "target", "release", "quartznet-transcribe")
DEFAULT_CALIBRATION = [os.path.join(ROOT, "data", "train_manifest.json"), os.path.join(ROOT, "data", "dev_manifest.json")]


def int8_path(onnx_path: str) -> str:
    """models/x.onnx -> models/x.int8.onnx"""
    return os.path.splitext(onnx_path)[0] + ".int8.onnx"


def sidecar_of(onnx_path: str) -> str:
    return os.path.splitext(onnx_path)[0] + ".json"


def manifest_audio(paths):
    """Audio files of NeMo manifests (JSON lines) or folders holding manifest.tsv."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            with open(os.path.join(path, "manifest.tsv"), encoding="utf-8") as f:
                for line in f:
                    name = line.split("\t")[0]
                    if name.endswith(".wav"):
                        files.append(os.path.join(path, name))
        else:
            base = os.path.dirname(os.path.abspath(path))
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        audio = json.loads(line)["audio_filepath"]
                        files.append(audio if os.path.isabs(audio) else os.path.join(base, audio))
    return files


def dump_features(binary, model, wavs, out_dir):
    """The normalised whole-utterance features the model gets for each wav, by the Rust frontend."""
    paths = []
    for i, wav in enumerate(wavs):
        npy = os.path.join(out_dir, f"{i:04d}.npy")
        subprocess.run(
            [binary, "--model", model, "--offline", "--threads", "1", "--decoder", "greedy",
             "--dump-features", npy, wav],
            check=True, capture_output=True,
        )
        paths.append(npy)
    return paths


class FeatureReader:
    """onnxruntime.quantization.CalibrationDataReader over .npy feature files, one utterance each
    (or, with `segment`, every whole `segment`-frame piece of them: the histogram calibrators
    need inputs of one shape)."""

    def __init__(self, paths, input_name, segment=None, length_name=None):
        import numpy as np

        self.input_name = input_name
        self.length_name = length_name
        self.items = []
        for path in paths:
            x = np.load(path).astype(np.float32)
            if segment:
                self.items += [x[:, :, i:i + segment] for i in range(0, x.shape[2] - segment + 1, segment)]
            else:
                self.items.append(x)
        self.rewind()

    def get_next(self):
        if self._i >= len(self.items):
            return None
        self._i += 1
        x = self.items[self._i - 1]
        if self.length_name is None:
            return {self.input_name: x}
        import numpy as np

        # Graphs with a `length` input (the Conformers): every frame given is valid.
        return {self.input_name: x, self.length_name: np.array([x.shape[2]], dtype=np.int64)}

    def rewind(self):
        self._i = 0

    def __iter__(self):  # as CalibrationDataReader (qdq_loss_debug iterates the reader)
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def has_external_data(model_path):
    """Whether the model keeps tensors in external data files."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    m = onnx.load(model_path, load_external_data=False)
    return any(uses_external_data(t) for t in m.graph.initializer)


def conv_nodes(model_path):
    """[(name, groups)] of the convolutions, in graph order."""
    import onnx

    m = onnx.load(model_path, load_external_data=False)
    return [(n.name, next((a.i for a in n.attribute if a.name == "group"), 1))
            for n in m.graph.node if n.op_type == "Conv"]


def quantize(src, dst, scheme="static", fmt="qoperator", per_channel=True, reduce_range=True,
             activations="u8", weights="s8", preprocess=True, keep_fp32=("first", "last"), calibrate="percentile",
             percentile=99.99,
             feature_paths=None, work_dir=None):
    """Write the int8 model `dst` from `src`; returns a one-line description of the scheme."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    work_dir = os.path.abspath(work_dir or tempfile.mkdtemp(prefix="quantize_"))
    os.makedirs(work_dir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    # A model over 2 GB (Parakeet-CTC 0.6B, 1.1B) keeps its weights in external data, and so
    # must every model written on the way (tools/export_nemo.py gather_external_data).
    large = has_external_data(src)
    external = dict(save_as_external_data=True, all_tensors_to_one_file=True,
                    external_data_location="preprocessed.onnx.data") if large else {}
    model = src
    symbolic = True
    if preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        model = os.path.join(work_dir, "preprocessed.onnx")
        src = os.path.abspath(src)
        here = os.getcwd()
        # The shape inference of models over ~300 MB writes temporary files into the current
        # folder (sym_shape_infer_temp.onnx, <uuid>.data): keep them out of the caller's.
        os.chdir(work_dir)
        try:
            quant_pre_process(src, model, **external)
        except Exception as e:  # noqa: BLE001 - ORT raises a bare Exception
            # ORT's symbolic shape inference gives up on some graphs (the Conformers' relative
            # position attention: "Incomplete symbolic shape inference"); ONNX's own shape
            # inference and the graph optimisation still apply.
            if "symbolic shape" not in str(e):
                raise
            symbolic = False
            quant_pre_process(src, model, skip_symbolic_shape=True, **external)
        finally:
            os.chdir(here)
    convs = conv_nodes(model)
    exclude = []
    for which in keep_fp32:
        if which == "first":
            exclude.append(convs[0][0])
        elif which == "last":
            exclude.append(convs[-1][0])
        elif which == "depthwise":
            exclude += [name for name, groups in convs if groups > 1]
        elif which:
            exclude.append(which)  # a node name
    parts = [scheme, f"{weights} weights"]
    if scheme == "dynamic":
        quantize_dynamic(model, dst, per_channel=per_channel, reduce_range=reduce_range, use_external_data_format=large,
                         weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8, nodes_to_exclude=exclude or None)
    else:
        if not feature_paths:
            raise SystemExit("static quantization needs calibration features")
        import onnx

        inputs = [i.name for i in onnx.load(model, load_external_data=False).graph.input]
        input_name = inputs[0]
        length_name = "length" if "length" in inputs[1:] else None
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[calibrate]
        quantize_static(
            model, dst, FeatureReader(feature_paths, input_name, None if calibrate == "minmax" else 200, length_name),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            per_channel=per_channel, reduce_range=reduce_range,
            activation_type=QuantType.QUInt8 if activations == "u8" else QuantType.QInt8,
            weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8,
            nodes_to_exclude=exclude or None, calibrate_method=method, use_external_data_format=large,
            extra_options={"CalibPercentile": percentile} if calibrate == "percentile" else None,
        )
        parts += [fmt, f"{activations} activations", (f"percentile {percentile}" if calibrate == "percentile" else calibrate)
                  + f" calibration on {len(feature_paths)} utterances"]
    parts += ["per-channel" if per_channel else "per-tensor", "reduce_range" if reduce_range else "full-range",
              ("pre-processed" if symbolic else "pre-processed without symbolic shapes") if preprocess
              else "not pre-processed"]
    if exclude:
        parts.append(f"{len(exclude)} convolutions in fp32 ({', '.join(keep_fp32)})")
    return ", ".join(parts)


def write_int8_sidecar(src_onnx, dst_onnx, scheme_text):
    """Copy the sidecar, noting the quantization in its description and keeping the LM reachable."""
    side_src = sidecar_of(src_onnx)
    with open(side_src, encoding="utf-8") as f:
        side = json.load(f)
    side["description"] = (side.get("description", "").rstrip() +
                           f" Quantized to int8 by tools/quantize_onnx.py ({scheme_text}).").strip()
    lm = side.get("language_model")
    if lm and not os.path.isabs(lm):
        lm_abs = os.path.join(os.path.dirname(os.path.abspath(side_src)), lm)
        rel = os.path.relpath(lm_abs, os.path.dirname(os.path.abspath(dst_onnx)))
        side["language_model"] = rel  # the description resolves it against the sidecar's folder
    out = sidecar_of(dst_onnx)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(side, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return out


def add_arguments(ap, standalone=True):
    g = ap if standalone else ap.add_argument_group("int8 quantization (with --int8)")
    g.add_argument("--scheme", choices=["static", "dynamic"], default="static",
                   help="static: calibrated activations (default); dynamic: weights only, ConvInteger")
    g.add_argument("--format", dest="fmt", choices=["qoperator", "qdq"], default="qoperator",
                   help="static quantization format (default: qoperator, QLinearConv)")
    g.add_argument("--no-per-channel", action="store_true", help="one weight scale per tensor")
    g.add_argument("--no-reduce-range", action="store_true", help="full 8-bit weights (AVX2 may saturate)")
    g.add_argument("--activations", choices=["u8", "s8"], default="u8", help="activation type (default u8)")
    g.add_argument("--weights", choices=["s8", "u8"], default="s8",
                   help="weight type (default s8; u8 weights use the U8U8 kernels, exact on AVX2)")
    g.add_argument("--no-preprocess", action="store_true", help="skip quant_pre_process")
    g.add_argument("--keep-fp32", default="first,last",
                   help="comma-separated: first, last, depthwise (all grouped convolutions) or node names of "
                   "convolutions left in fp32; '' for none (default: first,last)")
    g.add_argument("--calibrate", choices=["minmax", "entropy", "percentile"], default="percentile",
                   help="activation range calibration (default: percentile)")
    g.add_argument("--percentile", type=float, default=99.99,
                   help="with --calibrate percentile: the percentile of |activation| kept (default 99.99)")
    g.add_argument("--calibration", nargs="+", default=None,
                   help="NeMo manifests or manifest.tsv folders of TRAINING/dev clips "
                   f"(default: {' '.join(DEFAULT_CALIBRATION)})")
    g.add_argument("--calibration-clips", type=int, default=64, help="clips drawn from them (default 64)")
    g.add_argument("--features-dir", default=None,
                   help="use these ready *.npy features (from --dump-features) instead of running the CLI")
    g.add_argument("--binary", default=DEFAULT_BINARY, help="quartznet-transcribe that dumps the features")


def run(args, src, dst):
    """Calibrate (if static), quantize src -> dst and write the sidecar; returns 0."""
    work = tempfile.mkdtemp(prefix="quantize_")
    features = None
    if args.scheme == "static":
        if args.features_dir:
            features = sorted(glob.glob(os.path.join(args.features_dir, "*.npy")))
        else:
            wavs = manifest_audio(args.calibration or DEFAULT_CALIBRATION)
            random.Random(0).shuffle(wavs)
            wavs = wavs[: args.calibration_clips]
            print(f"dumping features of {len(wavs)} calibration clips with {args.binary}", file=sys.stderr)
            os.makedirs(os.path.join(work, "features"))
            features = dump_features(args.binary, src, wavs, os.path.join(work, "features"))
    text = quantize(src, dst, scheme=args.scheme, fmt=args.fmt, per_channel=not args.no_per_channel,
                    reduce_range=not args.no_reduce_range, activations=args.activations, weights=args.weights,
                    preprocess=not args.no_preprocess,
                    keep_fp32=[k.strip() for k in args.keep_fp32.split(",") if k.strip()],
                    calibrate=args.calibrate, percentile=args.percentile, feature_paths=features, work_dir=work)
    side = write_int8_sidecar(src, dst, text)
    print(f"wrote {dst} ({os.path.getsize(dst)} bytes; {os.path.getsize(src)} fp32): {text}")
    print(f"wrote {side}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="fp32 .onnx with its sidecar .json beside it")
    ap.add_argument("-o", "--output", default=None, help="int8 .onnx (default: MODEL.int8.onnx)")
    add_arguments(ap)
    args = ap.parse_args()
    return run(args, args.model, args.output or int8_path(args.model))


if __name__ == "__main__":
    sys.exit(main())
