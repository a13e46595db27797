"""Writes the seed corpus of fuzz_onnx (tests/fuzz/corpus/fuzz_onnx/): small ONNX models made
with onnx.helper that reach the importer's operator families (convolution and pooling with pads,
batch normalization, Gemm after a Flatten, the Shape-Gather-Concat chain before a Reshape, an
LSTM, a GRU, an embedding, a Transpose, a Resize, a refused operator, an opset-6 model).
Usage: python3 tests/fuzz/make_onnx_seeds.py [FOLDER]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def tensor(name, shape, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, inputs, outputs, inits, opset=13):
    graph = helper.make_graph(nodes, "seed", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def value(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def seeds():
    image = value("x", ["N", 2, 6, 6])
    yield "conv_pool", model([
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 0, 0, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0]),
        helper.make_node("BatchNormalization", ["p", "s", "bb", "m", "v"], ["y"], epsilon=1e-5),
    ], [image], [value("y", None)], [tensor("w", [3, 2, 3, 3], 1), tensor("b", [3], 2), tensor("s", [3], 3),
                                     tensor("bb", [3], 4), tensor("m", [3], 5), numpy_helper.from_array(
                                         np.ones(3, np.float32), "v")])
    yield "flatten_gemm", model([
        helper.make_node("Conv", ["x", "w"], ["c"], group=2),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "g", "gb"], ["y"], transB=1),
        helper.make_node("Softmax", ["y"], ["s"], axis=-1),
    ], [image], [value("s", None)], [tensor("w", [2, 1, 3, 3], 6), tensor("g", [4, 32], 7), tensor("gb", [4], 8)])
    yield "shape_chain", model([
        helper.make_node("Shape", ["x"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["nu"]),
        helper.make_node("Concat", ["nu", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ], [image], [value("y", None)], [ints("zero", 0), ints("axes", [0]), ints("minus1", [-1])])
    seq = value("s", [5, "N", 3])
    yield "lstm", model([
        helper.make_node("LSTM", ["s", "W", "R", "B"], ["Y", "Y_h"], hidden_size=4, direction="bidirectional"),
        helper.make_node("Squeeze", ["Y_h", "ax0"], ["h"]),
    ], [seq], [value("Y", None), value("h", None)], [tensor("W", [2, 16, 3], 9), tensor("R", [2, 16, 4], 10),
                                                     tensor("B", [2, 32], 11), ints("ax0", [0])])
    yield "gru", model([
        helper.make_node("Transpose", ["t"], ["s"], perm=[1, 0, 2]),
        helper.make_node("GRU", ["s", "W", "R"], ["Y"], hidden_size=2, linear_before_reset=1),
    ], [value("t", ["N", 5, 3])], [value("Y", None)], [tensor("W", [1, 6, 3], 12), tensor("R", [1, 6, 2], 13)])
    yield "embedding", model([
        helper.make_node("Gather", ["table", "ids"], ["e"]),
        helper.make_node("ReduceMean", ["e"], ["y"], axes=[1], keepdims=0),
    ], [value("ids", ["N", 7], TensorProto.INT64)], [value("y", None)], [tensor("table", [10, 4], 14)])
    yield "resize_transpose", model([
        helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Add", ["t", "t"], ["y"]),
    ], [image], [value("y", None)], [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    yield "refused", model([
        helper.make_node("Erf", ["x"], ["e"]),
        helper.make_node("Hardmax", ["x"], ["y"]),
    ], [image], [value("e", None), value("y", None)], [])
    yield "opset6", model([
        helper.make_node("Add", ["x", "b"], ["y"], broadcast=1, axis=1),
        helper.make_node("PRelu", ["y", "slope"], ["z"]),
    ], [image], [value("z", None)], [tensor("b", [2], 15), tensor("slope", [2], 16)], opset=6)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_onnx")
    os.makedirs(folder, exist_ok=True)
    for name, m in seeds():
        with open(os.path.join(folder, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
