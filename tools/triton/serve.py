#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Serve exported NeMo CTC models (ONNX) through Triton Inference Server, with PyTriton.

Each served model has the graph's own interface (the same input, length and output names the
element's local ONNX Runtime session uses), a batch axis in front, and Triton's dynamic
batcher: requests of the same shape (the element's fixed-length windows) that arrive within
`--queue-delay-us` of each other run as one batch. Lengths (int64 [batch] in the graph) are
[batch, 1] on the wire, as a Triton model repository declares them (`dims: [1]`, reshaped).
Each model is served under its file's stem (`hama-en` for `models/hama-en.onnx`).

Runs with the venv made by tools/triton/setup.sh (Debian's /usr/bin/python3: PyTriton's
Python-backend stub needs that build). Prints `READY <http-port>` once the models answer.

    /opt/venvs/pytriton/bin/python tools/triton/serve.py models/hama-en.onnx --http-port 8000
"""

import argparse
import os
import shutil
import signal
import sys
import threading
import time

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

NUMPY = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def served_shape(shape):
    """The graph's shape without its batch axis; a [batch] lengths tensor is [1] per item."""
    rest = [d if isinstance(d, int) else -1 for d in shape[1:]]
    return tuple(rest) if rest else (1,)


# The element's sessions (engine/src/model/pool.rs) are built at `ort`'s Level3, which is ONNX
# Runtime's ORT_ENABLE_LAYOUT; Python's default is ORT_ENABLE_ALL, whose fusions give the
# bundled model log-probs up to 0.03 apart. The same level gives the same numbers.
OPTIMIZATION = {
    "layout": ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def bound(path, threads, delay, optimization):
    """The inference function and tensors of one ONNX model."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = OPTIMIZATION[optimization]
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    # Graph tensors that are [batch] travel as [batch, 1].
    flat_inputs = {i.name for i in inputs if len(i.shape) == 1}
    flat_outputs = {o.name for o in outputs if len(o.shape) == 1}

    @batch
    def infer(**tensors):
        feeds = {k: (v.reshape(-1) if k in flat_inputs else v) for k, v in tensors.items()}
        results = session.run(None, feeds)
        if delay:
            threading.Event().wait(delay)
        # The declared dtype exactly: PyTriton checks it, strictly.
        return {
            o.name: np.asarray(r.reshape(-1, 1) if o.name in flat_outputs else r, dtype=NUMPY[o.type])
            for o, r in zip(outputs, results)
        }

    tensors_in = [Tensor(name=i.name, dtype=NUMPY[i.type], shape=served_shape(i.shape)) for i in inputs]
    tensors_out = [Tensor(name=o.name, dtype=NUMPY[o.type], shape=served_shape(o.shape)) for o in outputs]
    return infer, tensors_in, tensors_out


def exit_with_parent(scratch):
    """Ends the whole process group (Triton and its Python-backend stubs) once the process
    that started this one is gone, so a test run that dies leaves no server behind; removes
    `scratch` (its workspace) first."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="ONNX model files")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=0, help="0: no gRPC endpoint")
    parser.add_argument("--metrics-port", type=int, default=0, help="0: no metrics endpoint")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--optimization",
        choices=sorted(OPTIMIZATION),
        default="layout",
        help="ONNX Runtime graph optimisations (layout: the element's own, the same log-probs)",
    )
    parser.add_argument(
        "--delay-ms",
        type=int,
        default=0,
        help="sleep this long in every batch (tests: a server slower than the client's timeout)",
    )
    parser.add_argument(
        "--require-header",
        metavar="NAME=VALUE",
        help="refuse inference requests without this header "
        "(Triton's restricted API; PyTriton itself polls health and metadata)",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the starting process ends (tests; start this in a process group of its own)",
    )
    parser.add_argument(
        "--scratch",
        help="with --exit-with-parent: a folder to remove then (the caller's workspace for this server)",
    )
    args = parser.parse_args()
    if args.exit_with_parent:
        exit_with_parent(args.scratch)
    delay = args.delay_ms / 1000.0
    models = [
        (path.rsplit("/", 1)[-1].rsplit(".", 1)[0], bound(path, args.threads, delay, args.optimization))
        for path in args.models
    ]

    # PyTriton restricts some endpoints with a random token by default: statistics must stay
    # readable (tools/triton/measure.py), so restrictions are only the ones asked for.
    security = TritonSecurityConfig(restricted_endpoints=[])
    restricted = None
    if args.require_header:
        key, _, value = args.require_header.partition("=")
        restricted = f"inference:{key}={value}"
    config = TritonConfig(
        http_address=args.address,
        http_port=args.http_port,
        allow_grpc=args.grpc_port > 0,
        grpc_address=args.address,
        grpc_port=args.grpc_port or None,
        allow_metrics=args.metrics_port > 0,
        metrics_port=args.metrics_port or None,
        http_restricted_api=restricted,
        log_verbose=0,
    )
    with Triton(config=config, security_config=security) as triton:
        for name, (infer, inputs, outputs) in models:
            triton.bind(
                model_name=name,
                infer_func=infer,
                inputs=inputs,
                outputs=outputs,
                config=ModelConfig(
                    max_batch_size=args.max_batch,
                    batcher=DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us),
                ),
                strict=True,
            )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print(f"READY {args.http_port}", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
