#!/usr/bin/env bash
# Runs the benchmark suite against real, release-built services and the local RabbitMQ
# (private nodes where a test needs its own), loopback only, every loop bounded, and writes
# BENCHMARKS.md. Takes about five minutes. Not part of CI (CI only builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_broker
need_packages "chromium chromedriver" chromium chromium-driver
cargo build --release --quiet -p bench -p publisher -p consumer
bin=target/release
out=$(mktemp)
{
  echo "# Benchmarks"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); $(rabbitmqctl version 2>/dev/null | head -1 | sed 's/^/RabbitMQ /')"
  echo "Date: $(date -u +%Y-%m-%d). Commit: $(git rev-parse --short HEAD). Command: \`bench/run.sh\`."
  echo
  echo "## End-to-end latency (\`latency 300 1000\`)"; echo
  "$bin/latency" 300 1000
  echo; echo "## Throughput (\`throughput 10\`)"; echo
  "$bin/throughput" 10
  echo; echo "## Footprint and start-up (\`footprint 60\`)"; echo
  "$bin/footprint" 60
  echo; echo "## Broker restart (\`broker_recovery 3 5\`)"; echo
  echo '```'; "$bin/broker_recovery" 3 5; echo '```'
  echo; echo "## WebSocket churn (\`ws_churn 5000 5\`)"; echo
  echo '```'; "$bin/ws_churn" 5000 5; echo '```'
  echo; echo "## Dashboard with 50 hosts (\`dashboard_hosts 50 30\`)"; echo
  echo '```'; "$bin/dashboard_hosts" 50 30; echo '```'
} | tee "$out"
mv "$out" BENCHMARKS.md
say "wrote BENCHMARKS.md"
