#!/bin/sh
# `strata serve` (issue 17) on loopback, at a small size: a dense MNIST model trained briefly twice
# (two weights files), served with a 1 MiB body limit;
#  - tests/serve_check.py: health, metadata, inference in JSON, binary and as a PGM picture, every
#    error status with the field named, dynamic batching under load (mean batch above 1), a reload
#    under load with zero failed requests, a failed reload that keeps the old weights;
#  - promtool (Debian's prometheus) accepts /metrics;
#  - a full queue answers 503 with Retry-After, a request queued past --timeout-us 504;
#  - SIGTERM with requests queued: they are answered, new connections are refused, exit 0;
#  - bad command lines exit 2.
set -u
. "$(dirname "$0")/lib.sh"
private_cache
python=/usr/bin/python3
client="$python $src/../examples/serve_client.py"

mnist_mlp "$tmp/m.yaml" mnist_serve 32 64 1 1 || exit 1
"$strata" train "$tmp/m.yaml" --limit 256 --save "$tmp/w1.stw" >"$tmp/out" 2>&1
check "train w1: $(said)" $?
"$strata" train "$tmp/m.yaml" --limit 256 --seed 2 --save "$tmp/w2.stw" >"$tmp/out" 2>&1
check "train w2: $(said)" $?
$python -c "import sys; sys.stdout.buffer.write(b'P5 28 28 255\n' + bytes(range(256))[:196] * 4)" >"$tmp/digit.pgm"

# serve NAME [options]: starts the server in the background ($pid, $port), waiting for its line.
serve() {
	name=$1
	shift
	"$strata" serve "$tmp/m.yaml" --weights "$tmp/w1.stw" --port 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid=$!
	port=""
	for _ in $(seq 1 300); do
		port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/$name.out")
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	echo "FAIL: strata serve $name did not start: $(cat "$tmp/$name.err")"
	fails=$((fails + 1))
	return 1
}

# ---- the protocol, batching, reloads, metrics ----------------------------------------------------
if serve main --max-body-bytes 1048576 --max-batch-size 32 --max-queue-delay-us 5000; then
	url=http://127.0.0.1:$port
	$python "$src/serve_check.py" "$url" mnist_serve "$tmp/w2.stw" "$tmp/digit.pgm" "$tmp/metrics.txt" >"$tmp/out" 2>&1
	check "serve_check: $(said)" $?
	promtool check metrics <"$tmp/metrics.txt" >"$tmp/out" 2>&1
	check "promtool check metrics: $(said)" $?
	$client "$url" mnist_serve --random 2 --binary >"$tmp/out" 2>&1 && grep -q "class" "$tmp/out"
	check "examples/serve_client.py: $(said)" $?
	kill -HUP "$pid"
	sleep 1
	grep -q "SIGHUP: model 'mnist_serve' reloaded its weights" "$tmp/main.err"
	check "SIGHUP reloads: $(cat "$tmp/main.err")" $?
	kill -TERM "$pid"
	wait "$pid"
	check "SIGTERM exits 0" $?
fi

# ---- a full queue, a timeout --------------------------------------------------------------------
if serve queue --max-queue-size 1 --max-queue-delay-us 2000000 --timeout-us 500000; then
	url=http://127.0.0.1:$port
	$client "$url" mnist_serve --random 1 >"$tmp/first" 2>&1 &
	first=$!
	sleep 0.5
	curl -s -i -X POST --data-binary @"$tmp/digit.pgm" "$url/v2/models/mnist_serve/infer" >"$tmp/out" 2>&1
	grep -q "^HTTP/1.1 503" "$tmp/out" && grep -qi "^Retry-After: 1" "$tmp/out" && grep -q "queue is full" "$tmp/out"
	check "a full queue is 503 with Retry-After: $(said)" $?
	wait "$first"
	grep -q "504: the request waited more than 500000 us" "$tmp/first"
	check "a request queued past --timeout-us is 504: $(cat "$tmp/first")" $?
	kill -TERM "$pid"
	wait "$pid"
	check "SIGTERM exits 0 (queue)" $?
fi

# ---- SIGTERM drains what is queued --------------------------------------------------------------
if serve drain --max-queue-delay-us 3000000; then
	url=http://127.0.0.1:$port
	for i in 1 2 3; do
		$client "$url" mnist_serve --random 2 >"$tmp/drain$i" 2>&1 &
	done
	# SIGTERM once the three wait in the queue (in flight: they and the metrics request itself).
	for _ in $(seq 1 100); do
		curl -s "$url/metrics" | grep -q "^strata_in_flight_requests 4$" && break
		sleep 0.2
	done
	kill -TERM "$pid"
	wait "$pid"
	check "SIGTERM with requests queued exits 0: $(cat "$tmp/drain.err")" $?
	wait
	ok=0
	for i in 1 2 3; do
		grep -q "class" "$tmp/drain$i" || ok=1
	done
	[ $ok -eq 0 ]
	check "SIGTERM answers the queued requests: $(cat "$tmp/drain1" "$tmp/drain2" "$tmp/drain3")" $?
	curl -s -o /dev/null "$url/v2/health/live"
	[ $? -ne 0 ]
	check "after SIGTERM no connection is accepted" $?
fi

# ---- bad command lines --------------------------------------------------------------------------
"$strata" serve "$tmp/m.yaml" --preferred-batch-sizes 8,4 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "increasing sizes" "$tmp/out"
check "decreasing preferred sizes exit 2: $(said)" $?
"$strata" serve "$tmp/m.yaml" --port 70000 >"$tmp/out" 2>&1
[ $? -eq 2 ]
check "a port past 65535 exits 2: $(said)" $?
"$strata" serve "$tmp/m.yaml" --weights "$tmp/missing.stw" --port 0 >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "missing.stw" "$tmp/out"
check "a missing weights file fails, naming it: $(said)" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
