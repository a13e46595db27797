#!/usr/bin/env python3
"""A client for `strata serve` (the Open Inference Protocol: KServe v2, Triton's HTTP/REST) with
Python's standard library only.

    python3 examples/serve_client.py http://127.0.0.1:8000 mnist_cnn digit.png
    python3 examples/serve_client.py http://127.0.0.1:8000 mnist_cnn --random 4 --binary

The first form sends a PNG or PGM picture as the body (decoded by the server as `strata predict`
does); the second sends N random images as FP32 tensors, in JSON or with --binary as raw bytes
after the JSON (Triton's binary tensor data extension), and prints each sample's class.
"""
import argparse
import json
import random
import struct
import sys
import urllib.error
import urllib.request


class ServerError(Exception):
    """A response other than 200: .status, and the server's {"error": ...} message."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def request(url, body=None, headers=None, method=None):
    """(status, headers, body bytes); a non-200 status raises ServerError."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError):
            message = text.decode(errors="replace")
        raise ServerError(e.code, message) from None


def metadata(server, model):
    return json.loads(request(f"{server}/v2/models/{model}")[2])


def infer_json(server, model, inputs, outputs=None):
    """inputs: [(name, datatype, shape, flat values)]; returns {output name: (shape, values)}."""
    body = {"inputs": [{"name": n, "datatype": t, "shape": s, "data": v} for n, t, s, v in inputs]}
    if outputs:
        body["outputs"] = [{"name": o} for o in outputs]
    _, _, text = request(f"{server}/v2/models/{model}/infer", json.dumps(body).encode(), method="POST")
    return {o["name"]: (o["shape"], o["data"]) for o in json.loads(text)["outputs"]}


PACK = {"FP32": "f", "INT32": "i", "UINT8": "B"}


def infer_binary(server, model, inputs):
    """As infer_json, every tensor as raw little-endian bytes both ways."""
    header, raw = {"inputs": [], "parameters": {"binary_data_output": True}}, b""
    for name, dtype, shape, values in inputs:
        data = struct.pack(f"<{len(values)}{PACK[dtype]}", *values)
        header["inputs"].append({"name": name, "datatype": dtype, "shape": shape,
                                 "parameters": {"binary_data_size": len(data)}})
        raw += data
    head = json.dumps(header).encode()
    _, headers, body = request(f"{server}/v2/models/{model}/infer", head + raw,
                               {"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"}, method="POST")
    json_len = int(headers.get("Inference-Header-Content-Length", len(body)))
    result, at = {}, json_len
    for o in json.loads(body[:json_len])["outputs"]:
        size = o["parameters"]["binary_data_size"]
        result[o["name"]] = (o["shape"], list(struct.unpack(f"<{size // 4}f", body[at:at + size])))
        at += size
    return result


def infer_image(server, model, path):
    with open(path, "rb") as f:
        _, _, text = request(f"{server}/v2/models/{model}/infer", f.read(), method="POST")
    return {o["name"]: (o["shape"], o["data"]) for o in json.loads(text)["outputs"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server")
    parser.add_argument("model")
    parser.add_argument("image", nargs="?")
    parser.add_argument("--random", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=None, help="seed of the --random inputs")
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    try:
        if args.image:
            result = infer_image(args.server, args.model, args.image)
        else:
            meta = metadata(args.server, args.model)
            inputs = []
            for i in meta["inputs"]:
                shape = [max(args.random, 1)] + i["shape"][1:]
                count = 1
                for d in shape:
                    count *= d
                values = [rnd.random() for _ in range(count)] if i["datatype"] == "FP32" else [0] * count
                inputs.append((i["name"], i["datatype"], shape, values))
            result = (infer_binary if args.binary else infer_json)(args.server, args.model, inputs)
    except ServerError as e:
        sys.exit(f"serve_client: {e}")
    for name, (shape, values) in result.items():
        width = len(values) // shape[0]
        for s in range(shape[0]):
            row = values[s * width:(s + 1) * width]
            print(f"{name}[{s}]: class {row.index(max(row))}, {', '.join(f'{v:.4f}' for v in row)}")


if __name__ == "__main__":
    main()
