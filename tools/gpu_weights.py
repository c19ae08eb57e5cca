#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""A random-weight model's graph without its weights, and the weights made again elsewhere.

A full-size random-weight model (tools/fullsize_models.py: FastConformer-CTC large, 460 MB of
float weights) is too large to carry to the device machine, and its weights are random anyway.
`strip` keeps the graph and, per large float initializer, its mean and standard deviation (so
normalisation scales stay near 1 and activations keep a sane scale); `fill` writes new weights
with those statistics into the external data file the stripped graph names. The graph, every
shape and every small tensor (shape constants, indices) are the model's own; only the values
of the large float tensors are redrawn.

    python3 tools/gpu_weights.py strip MODEL.onnx OUT_DIR   # OUT_DIR/model.onnx + stats.json
    python3 tools/gpu_weights.py fill OUT_DIR               # OUT_DIR/weights.bin

Needs the onnx and numpy packages.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

DATA_FILE = "weights.bin"
MIN_ELEMENTS = 1024
ALIGN = 64


def strip(model_path, out_dir):
    model = onnx.load(model_path)
    os.makedirs(out_dir, exist_ok=True)
    # Large float Constant nodes (the relative positional encoding table, 20 MB in a
    # FastConformer) become initializers, so they are left out too.
    for node in list(model.graph.node):
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.attribute[0].name != "value":
            continue
        value = node.attribute[0].t
        if value.data_type == TensorProto.FLOAT and int(np.prod(value.dims)) >= MIN_ELEMENTS:
            tensor = model.graph.initializer.add()
            tensor.CopyFrom(value)
            tensor.name = node.output[0]
            model.graph.node.remove(node)
    stats = {}
    offset = 0
    for tensor in model.graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or int(np.prod(tensor.dims)) < MIN_ELEMENTS:
            continue
        values = numpy_helper.to_array(tensor)
        stats[tensor.name] = [float(values.mean()), float(values.std())]
        length = values.size * 4
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        offset += (length + ALIGN - 1) // ALIGN * ALIGN
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump({"size": offset, "tensors": stats}, f)
    print(f"{len(stats)} tensors, {offset / 1e6:.0f} MB of weights left out; graph "
          f"{os.path.getsize(os.path.join(out_dir, 'model.onnx')) / 1e6:.1f} MB")


def fill(out_dir):
    model = onnx.load(os.path.join(out_dir, "model.onnx"), load_external_data=False)
    with open(os.path.join(out_dir, "stats.json")) as f:
        stats = json.load(f)
    rng = np.random.default_rng(0)
    with open(os.path.join(out_dir, DATA_FILE), "wb") as data:
        data.truncate(stats["size"])
        for tensor in model.graph.initializer:
            if tensor.data_location != TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in tensor.external_data}
            mean, std = stats["tensors"][tensor.name]
            values = rng.normal(mean, std, size=tuple(tensor.dims)).astype(np.float32)
            data.seek(int(info["offset"]))
            data.write(values.tobytes())
    print(f"{stats['size'] / 1e6:.0f} MB of random weights in {os.path.join(out_dir, DATA_FILE)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "strip":
        strip(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "fill":
        fill(sys.argv[2])
    else:
        sys.exit(__doc__)
