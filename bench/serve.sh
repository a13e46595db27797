#!/bin/sh
# Load test of `strata serve` (issue 17) with wrk (Debian's `wrk`) on loopback: the model (default
# models/mnist_cnn.yaml, its seed's weights: speed does not depend on them) served with dynamic
# batching on (--max-batch-size 64, the default: no queue delay, a batch holds what queued while
# the device was busy), on with a 1 ms queue delay, and off (1), one image per request as
# Triton's binary tensors, each server warmed up (a batch of every size) before its rows,
# at concurrency 1, 8, 64 and 256, DURATION seconds each. Prints requests/s, p50/p90/p99 latency
# and the mean batch the server formed (from /metrics), then `strata bench`'s inference images/s
# at batch 64 for comparison. wrk shares the machine's cores with the server.
# Usage: bench/serve.sh [--strata build/src/strata] [--model MODEL.yaml] [--duration 10]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
strata=$root/build/src/strata
model=$root/models/mnist_cnn.yaml
duration=10
while [ $# -gt 0 ]; do
	case $1 in
	--strata) strata=$2; shift 2 ;;
	--model) model=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	*) echo "usage: $0 [--strata PATH] [--model MODEL.yaml] [--duration SECONDS]" >&2; exit 2 ;;
	esac
done
command -v wrk >/dev/null || { echo "serve.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

# serve BATCH DELAY_US: the server in the background; sets pid, url, name.
serve() {
	"$strata" serve "$model" --port 0 --max-batch-size "$1" --max-queue-delay-us "$2" --max-connections 1024 \
		>"$tmp/serve.out" 2>"$tmp/serve.err" &
	pid=$!
	for _ in $(seq 1 300); do
		grep -q "^strata serve: ready" "$tmp/serve.out" && break
		sleep 0.2
	done
	grep -q "^strata serve: ready" "$tmp/serve.out" || { cat "$tmp/serve.err" >&2; exit 1; }
	line=$(grep "listening on" "$tmp/serve.out")
	url=${line##* }
	name=$(sed -n "s/^strata serve: model '\([^']*\)'.*/\1/p" "$tmp/serve.out")
}

# counter NAME: a counter's value in /metrics.
counter() {
	curl -s "$url/metrics" | sed -n "s/^$1{model=\"$name\"} //p"
}

printf '%-13s %6s %10s %9s %9s %9s %10s\n' batching conc req/s p50_ms p90_ms p99_ms mean_batch
for config in 64:0 64:1000 1:0; do
	batch=${config%:*} delay=${config#*:}
	label=$([ "$batch" -eq 1 ] && echo off || { [ "$delay" -eq 0 ] && echo on || echo on,delay1ms; })
	serve "$batch" "$delay"
	# One random image as binary tensor data, its JSON header's length in a header.
	/usr/bin/python3 - "$url" "$name" "$tmp" <<'PY'
import json, random, struct, sys, urllib.request
url, name, tmp = sys.argv[1:4]
meta = json.load(urllib.request.urlopen(f"{url}/v2/models/{name}"))
inp = meta["inputs"][0]
shape = [1] + inp["shape"][1:]
count = 1
for d in shape:
    count *= d
raw = struct.pack(f"<{count}f", *[random.random() for _ in range(count)])
head = json.dumps({"inputs": [{"name": inp["name"], "shape": shape, "datatype": "FP32",
                               "parameters": {"binary_data_size": len(raw)}}],
                   "parameters": {"binary_data_output": True}}).encode()
open(f"{tmp}/body.bin", "wb").write(head + raw)
open(f"{tmp}/post.lua", "w").write(
    f'local f = io.open("{tmp}/body.bin", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    f'wrk.method = "POST"\nwrk.headers["Inference-Header-Content-Length"] = "{len(head)}"\n'
    'wrk.headers["Content-Type"] = "application/octet-stream"\n')
PY
	for c in 1 8 64 256; do
		inf0=$(counter strata_inferences_total)
		exe0=$(counter strata_batch_executions_total)
		threads=$((c < 2 ? 1 : 2))
		wrk -t"$threads" -c"$c" -d"${duration}s" --latency -s "$tmp/post.lua" "$url/v2/models/$name/infer" >"$tmp/wrk.txt" 2>&1
		inf1=$(counter strata_inferences_total)
		exe1=$(counter strata_batch_executions_total)
		awk -v b="$label" -v c="$c" -v di=$((inf1 - inf0)) -v de=$((exe1 - exe0)) '
			function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
			/Requests\/sec/ { rps = $2 }
			$1 == "50%" { p50 = ms($2) } $1 == "90%" { p90 = ms($2) } $1 == "99%" { p99 = ms($2) }
			/Non-2xx/ { bad = $NF }
			END { printf "%-13s %6d %10.1f %9.2f %9.2f %9.2f %10.2f%s\n", b, c, rps, p50, p90, p99, de ? di / de : 0,
			      bad ? "  (" bad " non-2xx)" : "" }' "$tmp/wrk.txt"
	done
	kill -TERM "$pid"
	wait "$pid" || true
	pid=""
done
"$strata" bench "$model" --batch-size 64 --no-cold 2>&1 | grep -E "^Inference" | sed 's/^/strata bench --batch-size 64: /'
