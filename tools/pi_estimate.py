#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""On-paper real-time factors of the bundled models on a Raspberry Pi 4 and 5.

Profiles each model here with ONNX Runtime's own per-operator profiler (one intra-op thread,
the engine's optimisation level, ten seconds of audio per run), counts each node's
floating-point work from the shapes the profile records, and scales the time to the boards:

- convolutions and matrix products (the work the boards' NEON units do) by the ratio of this
  core's peak FP32 rate to the board core's, assuming ONNX Runtime's kernels reach the same
  fraction of peak there as here (MLAS has NEON kernels for both);
- every other operator (element-wise, normalisation, reshapes: bound by memory and latency,
  not by FMA units) by the same ratio, and, as a pessimistic bound, twice that.

Peaks (FP32 FLOPs per cycle per core x clock): this machine's Zen 2 core 32 (two 256-bit FMA
pipes) at the clock /proc/cpuinfo gives, or higher where a measured 1-thread SGEMM (ONNX Runtime
MatMul, 1024^3) shows the core boosting (taken as 90 % of peak); Cortex-A72 (Raspberry Pi 4) 8 (one 128-bit FMA per
cycle) at 1.5 GHz (1.8 GHz on boards from 2022: x0.83); Cortex-A76 (Raspberry Pi 5) 16 (two
128-bit FMA pipes) at 2.4 GHz. Times are the fastest of the runs (the machine is shared).

    /opt/venvs/nemo3/bin/python tools/pi_estimate.py [MODEL.onnx ...]

Needs Python's onnxruntime (the same 1.32 as the engine) and numpy. Prints a table per model
and the estimates; nothing is written except ONNX Runtime's profile files in a temporary
folder.
"""

import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

AUDIO_SECONDS = 10.0
RUNS = 10
GEMM_OPS = {"Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm", "ConvTranspose", "QLinearConv",
            "MatMulInteger", "NhwcFusedConv"}
FLOPS_PER_CYCLE_HERE = 32  # Zen 2: two 256-bit FMA pipes, FP32
SGEMM_EFFICIENCY = 0.9  # of peak, a large single-thread SGEMM in MLAS
BOARDS = [
    ("Raspberry Pi 4 (Cortex-A72, 1.5 GHz)", 8, 1.5),
    ("Raspberry Pi 5 (Cortex-A76, 2.4 GHz)", 16, 2.4),
]


def clock_ghz():
    with open("/proc/cpuinfo") as f:
        mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", f.read())]
    return max(mhz) / 1000.0 if mhz else 2.0


def session(path, profile_dir=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_dir:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(profile_dir, "profile")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feeds_for(sess, seconds):
    """Inputs for `seconds` of audio: a waveform [1, S] or log-mels [1, n_mels, T] (10 ms
    hop), and their lengths where the graph takes them."""
    feeds = {}
    signal_len = None
    for i in sess.get_inputs():
        if i.type == "tensor(float)":
            if len(i.shape) == 2:
                signal_len = int(16000 * seconds)
                feeds[i.name] = (np.random.default_rng(0).standard_normal((1, signal_len)) * 0.1).astype(np.float32)
            else:
                n_mels = i.shape[1] if isinstance(i.shape[1], int) else 64
                signal_len = int(100 * seconds) + 1
                feeds[i.name] = np.random.default_rng(0).standard_normal((1, n_mels, signal_len)).astype(np.float32)
    for i in sess.get_inputs():
        if i.type == "tensor(int64)":
            feeds[i.name] = np.array([signal_len], dtype=np.int64)
    return feeds


def node_flops(op, args):
    """FP32 operations (2 per multiply-add) of one node run, from its recorded shapes."""
    ins = [list(next(iter(d.values()))) for d in args.get("input_type_shape", [])]
    outs = [list(next(iter(d.values()))) for d in args.get("output_type_shape", [])]
    if not ins or not outs:
        return 0
    out = outs[0]
    if op in ("Conv", "FusedConv", "NhwcFusedConv", "QLinearConv") and len(ins) > 1:
        w = ins[1] if op != "QLinearConv" else ins[3]
        per_output = int(np.prod(w[1:]))  # C_in / group x kernel
        return 2 * int(np.prod(out)) * per_output
    if op in ("MatMul", "FusedMatMul", "MatMulInteger") and len(ins) > 1:
        k = ins[0][-1]
        return 2 * int(np.prod(out)) * k
    if op == "Gemm" and len(ins) > 1:
        a = ins[0]
        m, n = out[-2], out[-1]
        k = a[1] if a[0] == m else a[0]
        return 2 * m * n * k
    return 0


def profile(path):
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(path, tmp)
        feeds = feeds_for(sess, AUDIO_SECONDS)
        for _ in range(3):
            sess.run(None, feeds)
        walls = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            walls.append(time.perf_counter() - t0)
        events = json.load(open(sess.end_profiling()))
    per_op = collections.defaultdict(lambda: [0.0, 0])  # op -> [us, flops]
    runs = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs += 1
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op = e["args"].get("op_name", "?")
        per_op[op][0] += e["dur"]
        per_op[op][1] += node_flops(op, e["args"])
    # Every run is profiled (3 warm-ups + RUNS): per run, scaled to the fastest run (the
    # machine is shared: the slower runs waited for other people's work).
    runs = max(runs, 1)
    mean, best = sum(walls) / len(walls), min(walls)
    scale = best / mean
    return best, {op: (us / runs / 1e6 * scale, flops / runs) for op, (us, flops) in per_op.items()}


def sgemm_gflops():
    from onnx import TensorProto, helper
    n = 1024
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    sess.run(None, {"a": a, "b": a})
    t0 = time.perf_counter()
    runs = 5
    for _ in range(runs):
        sess.run(None, {"a": a, "b": a})
    return 2 * n ** 3 * runs / (time.perf_counter() - t0) / 1e9


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    models = sys.argv[1:] or [os.path.join(root, "models", m) for m in ("hama-en.onnx", "quartznet-en.onnx")]
    ghz = clock_ghz()
    sgemm = sgemm_gflops()
    # The virtual machine's cores boost past the clock /proc/cpuinfo gives: a measured SGEMM
    # above 90 % of that peak (what MLAS's AVX2 kernels reach) means a higher clock.
    peak_here = max(FLOPS_PER_CYCLE_HERE * ghz, sgemm / SGEMM_EFFICIENCY)
    print(f"this machine: Zen 2 core, {ghz:.2f} GHz in /proc/cpuinfo; ONNX Runtime {ort.__version__} "
          f"1-thread SGEMM 1024^3 measured {sgemm:.1f} GFLOP/s: peak taken as {peak_here:.1f} GFLOP/s "
          f"FP32 per core ({peak_here / FLOPS_PER_CYCLE_HERE:.2f} GHz)")
    for path in models:
        wall, ops = profile(path)
        total = sum(t for t, _ in ops.values())
        print(f"\n{os.path.basename(path)}: {AUDIO_SECONDS:.0f} s of audio per run, 1 thread, "
              f"best of {RUNS} runs {wall * 1000:.1f} ms wall (RTF {wall / AUDIO_SECONDS:.4f}), "
              f"{total * 1000:.1f} ms in operators")
        print(f"  {'operator':<22}{'ms/run':>9}{'share':>8}{'GFLOP':>9}{'GFLOP/s':>9}")
        gemm_t = other_t = 0.0
        for op, (t, flops) in sorted(ops.items(), key=lambda kv: -kv[1][0]):
            if op in GEMM_OPS:
                gemm_t += t
            else:
                other_t += t
            if t / total >= 0.01:
                rate = f"{flops / t / 1e9:9.1f}" if flops else f"{'':>9}"
                print(f"  {op:<22}{t * 1000:9.2f}{t / total:8.1%}{flops / 1e9:9.2f}{rate}")
        gemm_flops = sum(f for op, (_, f) in ops.items() if op in GEMM_OPS)
        print(f"  convolutions and matrix products: {gemm_t / total:.1%} of operator time, "
              f"{gemm_flops / 1e9:.2f} GFLOP per run at {gemm_flops / gemm_t / 1e9:.1f} GFLOP/s "
              f"({gemm_flops / gemm_t / 1e9 / peak_here:.0%} of this core's peak)")
        # Time outside the operators (session overhead, copies) scales like the other ops.
        outside = max(wall - total, 0.0)
        for name, per_cycle, board_ghz in BOARDS:
            ratio = peak_here / (per_cycle * board_ghz)
            estimate = (gemm_t + other_t + outside) * ratio
            pessimistic = gemm_t * ratio + 2 * (other_t + outside) * ratio
            print(f"  {name}: x{ratio:.1f} this core -> RTF {estimate / AUDIO_SECONDS:.3f} on 1 core "
                  f"(pessimistic {pessimistic / AUDIO_SECONDS:.3f}); "
                  f"{estimate / AUDIO_SECONDS / 4:.3f} to {pessimistic / AUDIO_SECONDS / 3:.3f} on 4 cores")


if __name__ == "__main__":
    main()
