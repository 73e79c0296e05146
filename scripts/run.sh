#!/usr/bin/env bash
# Runs hostpulse: starts RabbitMQ if needed, builds, starts the consumer and a publisher
# (publishing every second), and prints the dashboard URL. Ctrl-C stops both services.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_broker
say "building (release)"
cargo build --release --quiet --bin consumer --bin publisher

# Ports come from the .env files, the environment winning, as the services themselves read them.
env_port() { # $1 = env file, $2 = default
  local from_file
  from_file=$(sed -n 's/^[[:space:]]*APP_PORT[[:space:]]*=[[:space:]]*//p' "$1" 2>/dev/null | tail -n1 | tr -d "\"'")
  echo "${APP_PORT:-${from_file:-$2}}"
}
consumer_port=$(env_port consumer.env 8003)
publisher_port=$(env_port publisher.env 8000)

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

./target/release/consumer & pids+=($!)
./target/release/publisher & pids+=($!)

for _ in $(seq 1 100); do
  if port_open "$consumer_port" && port_open "$publisher_port"; then break; fi
  sleep 0.1
done
say "dashboard:   http://127.0.0.1:${consumer_port}/"
say "publish now: http://127.0.0.1:${publisher_port}/publish"
say "Ctrl-C stops both services"
wait -n "${pids[@]}"
