# SPDX-License-Identifier: MPL-2.0
"""Writes the small hand-made ONNX models the element tests load.

- wrong-interface.onnx, ten-classes.onnx: deliberately wrong models for the error tests.
- energy-letters.onnx: a stand-in recogniser with NeMo's interface whose output follows the
  input's loudness: blank on silence, a letter for the loudest pair of mel bands, a space for
  loud high bands. Unlike a randomly initialised QuartzNet (which emits characters on
  silence), it makes the element's gaps, word timing and messages testable.
- external-data/energy-letters.onnx + energy-letters.onnx.data: the same model with its
  weights in an external data file, as torch.onnx.export and onnx.save(...,
  save_as_external_data=True) write models over 2 GB (engine/tests/external_data.rs).

Run with any Python that has the `onnx` package (e.g. the NeMo venv from tools/setup_nemo.sh):
    python tools/make_test_models.py tests/fixtures/models
"""
import os
import sys

import onnx
from onnx import TensorProto, helper


def save(model, path):
    model.opset_import[0].version = 13
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print("wrote", path)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    # A valid ONNX graph with the wrong interface: an image-like input, not audio_signal.
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["image"], ["scores"])], "wrong-interface", [x], [y])
    save(helper.make_model(graph, producer_name="quartznetstt tests"), os.path.join(out_dir, "wrong-interface.onnx"))

    # The right names but 10 output classes: disagrees with 28 English labels + blank.
    a = helper.make_tensor_value_info("audio_signal", TensorProto.FLOAT, [None, 64, None])
    lp = helper.make_tensor_value_info("logprobs", TensorProto.FLOAT, [None, None, None])
    weights = helper.make_tensor("w", TensorProto.FLOAT, [10, 64, 1], [0.01] * 640)
    nodes = [
        helper.make_node("Conv", ["audio_signal", "w"], ["c"], strides=[2], pads=[0, 0]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
        helper.make_node("LogSoftmax", ["t"], ["logprobs"], axis=2),
    ]
    graph = helper.make_graph(nodes, "ten-classes", [a], [lp], initializer=[weights])
    save(helper.make_model(graph, producer_name="quartznetstt tests"), os.path.join(out_dir, "ten-classes.onnx"))

    # energy-letters: one 1x1 convolution with stride 2 (QuartzNet's subsampling) over the
    # normalised features, then log-softmax over 28 labels + blank (English, no sidecar).
    classes, bands = 29, 64
    w = [[0.0] * bands for _ in range(classes)]
    bias = [0.0] * classes
    for letter in range(1, 27):  # a..z listen to band pairs 0-1 .. 50-51
        w[letter][2 * (letter - 1)] = 1.0
        w[letter][2 * (letter - 1) + 1] = 1.0
    for band in range(52, 64):  # space listens to the high bands
        w[0][band] = 0.3
    bias[0] = -1.0
    bias[28] = 1.0  # blank wins wherever no band stands out (silence normalises to <= 0)
    flat = [v for row in w for v in row]
    weights = helper.make_tensor("w", TensorProto.FLOAT, [classes, bands, 1], flat)
    b = helper.make_tensor("b", TensorProto.FLOAT, [classes], bias)
    # A kernel of 1 with stride 2 sees feature frames 0, 2, 4...: T' = ceil(T / 2) like QuartzNet.
    nodes = [
        helper.make_node("Conv", ["audio_signal", "w", "b"], ["c"], strides=[2], pads=[0, 0]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
        helper.make_node("LogSoftmax", ["t"], ["logprobs"], axis=2),
    ]
    graph = helper.make_graph(nodes, "energy-letters", [a], [lp], initializer=[weights, b])
    energy = helper.make_model(graph, producer_name="quartznetstt tests")
    save(energy, os.path.join(out_dir, "energy-letters.onnx"))

    # The same model, its weights in one external data file beside it (its location, relative
    # to the model's folder, is the 24 bytes "energy-letters.onnx.data": the tests rewrite it
    # in place to other strings of that length).
    external = os.path.join(out_dir, "external-data")
    os.makedirs(external, exist_ok=True)
    from onnx import numpy_helper

    energy = onnx.ModelProto.FromString(energy.SerializeToString())
    for i, tensor in enumerate(energy.graph.initializer):
        # Only raw_data tensors go to the external file (make_tensor wrote float_data).
        energy.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    onnx.save(energy, os.path.join(external, "energy-letters.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="energy-letters.onnx.data", size_threshold=0)
    print("wrote", os.path.join(external, "energy-letters.onnx"), "+ energy-letters.onnx.data")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models")
