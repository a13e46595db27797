#!/bin/sh
# `strata serve` (issue 17) on loopback, at a small size: a dense MNIST model trained briefly twice
# (two weights files), served with a 1 MiB body limit;
#  - tests/serve_check.py: health, metadata, inference in JSON, binary and as a PGM picture, every
#    error status with the field named, dynamic batching under load (mean batch above 1), a reload
#    under load with zero failed requests, a failed reload that keeps the old weights;
#  - promtool (Debian's prometheus) accepts /metrics;
#  - a full queue answers 503 with Retry-After, a request queued past --timeout-us 504;
#  - SIGTERM with requests queued: they are answered, new connections are refused, exit 0;
#  - two models on one command line, each with its weights and serving: section; --repository;
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

# serve_models NAME ARGS...: starts `strata serve ARGS --port 0` in the background ($pid, $port),
# waiting until it says it is ready.
serve_models() {
	name=$1
	shift
	"$strata" serve "$@" --port 0 >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid=$!
	port=""
	for _ in $(seq 1 300); do
		if grep -q "^strata serve: ready" "$tmp/$name.out"; then
			port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/$name.out")
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	echo "FAIL: strata serve $name did not start: $(cat "$tmp/$name.err")"
	fails=$((fails + 1))
	return 1
}

# serve NAME [options]: the MNIST model with w1.stw.
serve() {
	name=$1
	shift
	serve_models "$name" "$tmp/m.yaml" --weights "$tmp/w1.stw" "$@"
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

# ---- several models: on the command line, and a repository ------------------------------------
# The second model file is the first under another name, with a serving: section of its own.
sed 's/^name: mnist_serve$/name: mnist_other/' "$tmp/m.yaml" >"$tmp/m2.yaml"
echo "serving: {max_batch_size: 8, preferred_batch_sizes: [4]}" >>"$tmp/m2.yaml"
if serve_models two "$tmp/m.yaml" --weights "$tmp/w1.stw" "$tmp/m2.yaml" --weights "$tmp/w2.stw"; then
	url=http://127.0.0.1:$port
	grep -q "model 'mnist_serve' on .*, batches of up to 64" "$tmp/two.out" &&
		grep -q "model 'mnist_other' on .*, batches of up to 8" "$tmp/two.out"
	check "two models, each with its serving: section's batch size: $(cat "$tmp/two.out")" $?
	$client "$url" mnist_serve --random 1 --seed 5 >"$tmp/one" 2>&1 &&
		$client "$url" mnist_other --random 1 --seed 5 >"$tmp/other" 2>&1 &&
		grep -q class "$tmp/one" && grep -q class "$tmp/other" && ! cmp -s "$tmp/one" "$tmp/other"
	check "each model answers with its own weights: $(cat "$tmp/one" "$tmp/other")" $?
	kill -TERM "$pid"
	wait "$pid"
	check "SIGTERM exits 0 (two models)" $?
fi
mkdir -p "$tmp/repo/digits" "$tmp/repo/fresh" "$tmp/repo/.hidden"
cp "$tmp/m.yaml" "$tmp/repo/digits/model.yaml"
cp "$tmp/w2.stw" "$tmp/repo/digits/model.stw"
cp "$tmp/m.yaml" "$tmp/repo/fresh/model.yaml"
if serve_models repo --repository "$tmp/repo"; then
	url=http://127.0.0.1:$port
	curl -s -X POST "$url/v2/repository/index" >"$tmp/out" 2>&1
	grep -q '"name":"digits","version":"1","state":"READY"' "$tmp/out" &&
		grep -q '"name":"fresh","version":"1","state":"READY"' "$tmp/out" && ! grep -q hidden "$tmp/out"
	check "--repository serves each folder under its name: $(said)" $?
	$client "$url" digits --random 1 --seed 5 >"$tmp/digits" 2>&1
	$client "$url" mnist_other --random 1 >"$tmp/out" 2>&1
	[ $? -ne 0 ] && grep -q "404" "$tmp/out" && grep -q class "$tmp/digits"
	check "a repository model answers by its folder's name, no other: $(said)" $?
	kill -TERM "$pid"
	wait "$pid"
fi
# The same seed's inputs through w2.stw on the command line: the answer digits gave.
if serve_models w2 "$tmp/m.yaml" --weights "$tmp/w2.stw"; then
	$client "http://127.0.0.1:$port" mnist_serve --random 1 --seed 5 >"$tmp/out" 2>&1
	cmp -s "$tmp/out" "$tmp/digits"
	check "the repository's model.stw is the weights served: $(said) / $(cat "$tmp/digits")" $?
	kill -TERM "$pid"
	wait "$pid"
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
"$strata" serve "$tmp/m.yaml" --weights "$tmp/w1.stw" "$tmp/m.yaml" --port 0 >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "two models are named 'mnist_serve'" "$tmp/out"
check "two models of one name exit 2: $(said)" $?
"$strata" serve --weights "$tmp/w1.stw" "$tmp/m.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "belongs after the model file" "$tmp/out"
check "--weights before any model file exits 2: $(said)" $?
"$strata" serve "$tmp/m.yaml" --weights "$tmp/w1.stw" --weights "$tmp/w2.stw" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "given twice" "$tmp/out"
check "two --weights for one model exit 2: $(said)" $?
"$strata" serve >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "needs a model file or --repository" "$tmp/out"
check "no model exits 2: $(said)" $?
mkdir -p "$tmp/badrepo/empty"
"$strata" serve --repository "$tmp/badrepo" >"$tmp/out" 2>&1
[ $? -ne 0 ] && grep -q "the folder 'empty' has no model.yaml" "$tmp/out"
check "a repository folder without model.yaml fails, naming it: $(said)" $?
printf 'serving: {max_batch_size: 4, preferred_batch_sizes: [8]}\n' >>"$tmp/badrepo/empty/model.yaml"
"$strata" serve "$tmp/badrepo/empty/model.yaml" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "model.yaml:1:" "$tmp/out"
check "a bad serving: section exits 2 with its line: $(said)" $?

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
