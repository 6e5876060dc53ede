#!/bin/bash
# walk.sh REPO OUT N: run the demo node (make run's lattice) from a coverage-built
# latticed, send N HTTP requests to kvcounter (HTTP -> httpserver provider -> host
# -> kvcounter actor -> keyvalue provider -> back), stop it, write the counters of
# all its processes merged into OUT/cov.txt. `make walk` runs it twice (N=0 and
# N=200) and lists the Go files on the invocation path (mk/walkdiff.py); see
# docs/architecture.md, "Where an invocation goes". Uses ports 8080, 8081 (the
# demo's), 24222 and 29464 on loopback.
set -euo pipefail
REPO=$1 OUT=$2 N=$3
rm -rf "$OUT" && mkdir -p "$OUT/cov"
cd "$REPO"
make -s actors >/dev/null
go build -cover -covermode=count -coverpkg=github.com/latticed/latticed/... -o "$OUT/latticed" ./cmd/latticed
DATA=$(mktemp -d)
export LATTICED_DATA_DIR=$DATA LATTICED_NATS_LISTEN=127.0.0.1:24222 LATTICED_METRICS_ADDR=127.0.0.1:29464 WASMCLOUD_ALLOW_FILE_LOAD=true GOCOVERDIR=$OUT/cov
"$OUT/latticed" up --apply examples/demo.yaml > "$OUT/node.log" 2>&1 &
PID=$!
for i in $(seq 1 240); do curl -sf -o /dev/null 127.0.0.1:8081/ && break; sleep 0.5; done
curl -sf 127.0.0.1:8081/ >/dev/null  # warm: first compile/instance already done
sleep 2
for i in $(seq 1 "$N"); do curl -sf -o /dev/null 127.0.0.1:8081/; done
sleep 1
kill -TERM $PID; wait $PID || true
rm -rf "$DATA"
go tool covdata textfmt -i="$OUT/cov" -o "$OUT/cov.txt"
echo "$OUT: $(ls $OUT/cov | wc -l) counter files"
