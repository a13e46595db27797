"""Writes tests/fuzz/corpus/fuzz_infer/: inference request bodies for fuzz_infer (a first byte that
places the end of the JSON, then the body): JSON ones flat and nested, each datatype, errors of
each kind, and JSON-then-binary ones.

Usage: python3 tests/fuzz/make_infer_seeds.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_infer")
IMAGE = {"name": "image", "shape": [1, 2, 2, 1], "datatype": "FP32", "data": [0.5, -1, 2, 3]}
IDS = {"name": "ids", "shape": [1, 3], "datatype": "INT32", "data": [1, 2, 3]}


def write(name, body, json_len=None):
    first = 255 if json_len is None else (json_len * 255 + len(body) - 1) // len(body)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([first]) + body)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("json", json.dumps({"id": "a", "inputs": [IMAGE, IDS]}).encode())
    nested = dict(IMAGE, shape=[2, 2, 2, 1], data=[[[[1], [2]], [[3], [4]]], [[[5], [6]], [[7], [8]]]])
    write("nested", json.dumps({"inputs": [nested, dict(IDS, shape=[2, 3], data=[[1, 2, 3], [4, 5, 6]])]}).encode())
    write("uint8", json.dumps({"inputs": [dict(IMAGE, datatype="UINT8", data=[0, 255, 7, 9]),
                                          dict(IDS, datatype="UINT8")],
                               "outputs": [{"name": "code", "parameters": {"binary_data": True}}]}).encode())
    write("bad_shape", json.dumps({"inputs": [dict(IMAGE, shape=[1, 2, 2]), IDS]}).encode())
    write("bad_json", b'{"inputs": [{"name": "image", "shape": [1, 2')
    head = json.dumps({"inputs": [dict(IMAGE, data=None, parameters={"binary_data_size": 16}),
                                  dict(IDS, data=None, parameters={"binary_data_size": 12})],
                       "parameters": {"binary_data_output": True}}).replace(', "data": null', "").encode()
    raw = struct.pack("<4f", 1.5, -2, 0.25, 8) + struct.pack("<3i", 0, 7, -1)
    write("binary", head + raw, len(head))


if __name__ == "__main__":
    main()
