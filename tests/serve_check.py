"""Checks a running `strata serve` (tests/test_serve.sh starts it): the Open Inference Protocol's
endpoints and errors, JSON against binary tensors, a picture as the body, dynamic batching under
load, and a reload of the weights under load with no request failing.

Usage: serve_check.py URL MODEL W2.stw IMAGE.pgm METRICS_OUT
Prints one line per failed check; exit status 1 when any failed.
"""
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from serve_client import ServerError, infer_binary, infer_image, infer_json, metadata, request  # noqa: E402

URL, MODEL, W2, IMAGE, METRICS_OUT = sys.argv[1:6]
failures = []


def check(what, ok, detail=""):
    if not ok:
        failures.append(f"FAIL: {what} {detail}")


def error_of(fn, *args):
    try:
        fn(*args)
    except ServerError as e:
        return e.status, e.message
    return 200, ""


def post(path, body, headers=None):
    return request(URL + path, body, headers or {}, method="POST")


def images(n, seed):
    rnd = random.Random(seed)
    return [rnd.random() for _ in range(n * 784)]


def close(a, b, tol=1e-6):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


# ---- health and metadata ----
check("live", request(URL + "/v2/health/live")[0] == 200)
check("ready", request(URL + "/v2/health/ready")[0] == 200)
check("model ready", request(f"{URL}/v2/models/{MODEL}/ready")[0] == 200)
server = json.loads(request(URL + "/v2")[2])
check("server metadata", server["name"] == "strata" and "binary_tensor_data" in server["extensions"], str(server))
meta = metadata(URL, MODEL)
check("model metadata", meta["inputs"][0]["shape"] == [-1, 28, 28, 1] and meta["outputs"][0]["shape"] == [-1, 10]
      and meta["inputs"][0]["datatype"] == "FP32", str(meta))
inp, out = meta["inputs"][0]["name"], meta["outputs"][0]["name"]

# ---- inference: JSON, binary, UINT8, batches ----
x = images(3, 1)
shape, y = infer_json(URL, MODEL, [(inp, "FP32", [3, 28, 28, 1], x)])[out]
check("json shape", shape == [3, 10], str(shape))
check("softmax rows", all(abs(sum(y[r * 10:(r + 1) * 10]) - 1) < 1e-4 for r in range(3)))
_, yb = infer_binary(URL, MODEL, [(inp, "FP32", [3, 28, 28, 1], x)])[out]
# JSON's 9 significant digits read back as the same float32.
check("binary = json", yb == [struct.unpack("<f", struct.pack("<f", v))[0] for v in y], f"{yb[:3]} {y[:3]}")
_, y1 = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[784:1568])])[out]
check("a sample alone = in a batch", close(y1, y[10:20]), f"{y1[:3]} {y[10:13]}")
pixels = [random.Random(2).randrange(256) for _ in range(784)]
_, yu = infer_json(URL, MODEL, [(inp, "UINT8", [1, 28, 28, 1], pixels)])[out]
_, yf = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], [p / 255.0 for p in pixels])])[out]
check("UINT8 scaled as the model's data", close(yu, yf, 1e-5), f"{yu[:3]} {yf[:3]}")
_, yi = infer_image(URL, MODEL, IMAGE)[out]
check("a PGM body", len(yi) == 10 and abs(sum(yi) - 1) < 1e-4, str(yi))

# ---- errors: status and the field named ----
status, msg = error_of(post, f"/v2/models/{MODEL}/infer", b'{"inputs": [')
check("malformed JSON is 400 with line and column", status == 400 and "line 1, column" in msg, f"{status} {msg}")
status, msg = error_of(infer_json, URL, MODEL, [(inp, "FP32", [1, 28, 28], [0.0] * 784)])
check("wrong shape is 400 naming it", status == 400 and "inputs[0].shape" in msg, f"{status} {msg}")
status, msg = error_of(infer_json, URL, MODEL, [(inp, "FP64", [1, 28, 28, 1], [0.0] * 784)])
check("wrong datatype is 400", status == 400 and "inputs[0].datatype" in msg, f"{status} {msg}")
status, msg = error_of(infer_json, URL, MODEL, [("pixels", "FP32", [1, 28, 28, 1], [0.0] * 784)])
check("unknown input is 400", status == 400 and "no input 'pixels'" in msg, f"{status} {msg}")
status, msg = error_of(post, f"/v2/models/{MODEL}/infer", b'{"inputs": [{"name": "%s", "shape": [1, 28, 28, 1], '
                       b'"datatype": "FP32", "data": [NaN]}]}' % inp.encode())
check("NaN is 400", status == 400 and "malformed JSON" in msg, f"{status} {msg}")
status, msg = error_of(infer_json, URL, "nope", [(inp, "FP32", [1, 28, 28, 1], [0.0] * 784)])
check("unknown model is 404", status == 404 and "no model 'nope'" in msg, f"{status} {msg}")
status, msg = error_of(request, URL + "/v2/nothing")
check("unknown endpoint is 404", status == 404, f"{status} {msg}")
# A body past --max-body-bytes: refused from its Content-Length, before it is sent (a raw socket:
# urllib would still be writing the body when the server answers and closes).
host, port = URL.split("//")[1].split(":")
with socket.create_connection((host, int(port)), timeout=30) as sock:
    sock.sendall(f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: {host}\r\nContent-Length: {2 << 20}\r\n"
                 "\r\n".encode() + b"x" * 1024)
    answer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
check("a body past --max-body-bytes is 413", answer.startswith(b"HTTP/1.1 413") and b"limit" in answer,
      answer[:300].decode(errors="replace"))

# ---- dynamic batching under load, then a reload under load with no failure ----
errors, done, stop = [], [0], threading.Event()


def client(seed, count):
    sample = images(1, seed)
    n = 0
    while (count and n < count) or (not count and not stop.is_set()):
        try:
            infer_binary(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], sample)])
            done[0] += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            errors.append(repr(e))
        n += 1


threads = [threading.Thread(target=client, args=(s, 12)) for s in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
check("load: no failures", not errors, str(errors[:3]))
before = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[:784])])[out][1]
threads = [threading.Thread(target=client, args=(s, 0)) for s in range(8)]
[t.start() for t in threads]
time.sleep(1.0)
status, msg = error_of(post, f"/v2/repository/models/{MODEL}/load",
                       json.dumps({"parameters": {"weights": W2}}).encode())
time.sleep(1.0)
stop.set()
[t.join() for t in threads]
check("reload under load succeeds", status == 200, f"{status} {msg}")
check("reload under load: no request failed", not errors, f"{len(errors)} failed: {errors[:3]}")
after = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[:784])])[out][1]
check("the new weights answer", not close(before, after, 1e-7), f"{before[:3]} {after[:3]}")
status, msg = error_of(post, f"/v2/repository/models/{MODEL}/load",
                       json.dumps({"parameters": {"weights": "/nonexistent.stw"}}).encode())
check("a failed reload is 400 and says why", status == 400 and "keeps its weights" in msg, f"{status} {msg}")
still = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[:784])])[out][1]
check("the old weights keep serving", still == after)

# Unload: not ready, requests refused with 503; load: serving the same weights again.
check("unload", post(f"/v2/repository/models/{MODEL}/unload", b"")[0] == 200)
status, msg = error_of(request, f"{URL}/v2/models/{MODEL}/ready")
check("an unloaded model is not ready (503)", status == 503, f"{status} {msg}")
status, msg = error_of(infer_json, URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[:784])])
check("an unloaded model refuses requests (503)", status == 503 and "unloaded" in msg, f"{status} {msg}")
status, msg = error_of(post, f"/v2/repository/models/{MODEL}/load", b"")
check("load after unload", status == 200, f"{status} {msg}")
again = infer_json(URL, MODEL, [(inp, "FP32", [1, 28, 28, 1], x[:784])])[out][1]
check("loaded again, the same weights answer", again == after, f"{again[:3]} {after[:3]}")

metrics = request(URL + "/metrics")[2].decode()
with open(METRICS_OUT, "w") as f:
    f.write(metrics)


def value(name):
    for line in metrics.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


inferences, executions = value("strata_inferences_total"), value("strata_batch_executions_total")
check("metrics count batches", inferences and executions, f"{inferences} {executions}")
if inferences and executions:
    check("batching formed batches above 1 sample on average", inferences / executions > 1.0,
          f"{inferences} / {executions}")
check("metrics count refusals", value("strata_refused_total") is not None and 'reason="body_size"} 1' in metrics)
check("metrics count the reloads", value("strata_reloads_total") == 2 and value("strata_reload_failures_total") == 1)
for line in failures:
    print(line)
print(f"serve_check: {done[0]} requests under load; mean batch {inferences / executions if executions else 0:.2f}")
sys.exit(1 if failures else 0)
