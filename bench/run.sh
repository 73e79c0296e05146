#!/usr/bin/env bash
# Runs the benchmark suite against real, release-built services and the local RabbitMQ
# (private nodes where a measurement needs its own), loopback only, every loop bounded, and
# writes BENCHMARKS.md whole: a summary table, then one section per binary. Takes about
# twenty minutes. Not part of CI (CI only builds it).
# Installs what it compares against from Debian's packages: collectd (with its amqp plugin),
# prometheus-node-exporter and, if it installs, netdata; none is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_broker
need_packages "chromium chromedriver" chromium chromium-driver
need_packages rabbitmqctl rabbitmq-server

# The peers must not start as services of their own when installed: they would run on beside
# the measurement. Debian asks /usr/sbin/policy-rc.d; one that says no is put there for the
# install when there is none.
install_quietly() {
  local added=""
  if [ "$(id -u)" -eq 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    added=yes
  fi
  local status=0
  need_packages "$1" "${@:2}" || status=$?
  [ -n "$added" ] && rm -f /usr/sbin/policy-rc.d
  return $status
}
# collectd-core's amqp plugin needs librabbitmq and yajl, which it only recommends.
install_quietly "collectd" collectd-core librabbitmq4 libyajl2 || say "collectd unavailable: its row will be missing"
install_quietly "prometheus-node-exporter" prometheus-node-exporter || say "node_exporter unavailable: its row will be missing"
install_quietly "netdata" netdata || say "netdata unavailable: its row will be missing"

cargo build --release --quiet -p bench -p publisher -p consumer
# The publisher as shipped (Dockerfile, systemd unit): scripts/build-agent.sh.
agent=$(scripts/build-agent.sh --quiet)
bin="${CARGO_TARGET_DIR:-target}/release"
sections=$(mktemp)
whole=$(mktemp)
BENCH_SUMMARY=$(mktemp)
export BENCH_SUMMARY
trap 'rm -f "$sections" "$whole" "$BENCH_SUMMARY"' EXIT
section() { echo; echo "## $1 (\`$2\`)"; echo; }
# Each binary prints its own section and adds its headline figures to $BENCH_SUMMARY; the
# summary table is put above the sections once every binary has run.
{
  section "End-to-end latency" "latency 300 1000"
  "$bin/latency" 300 1000
  section "Throughput" "throughput 10"
  "$bin/throughput" 10
  section "Fan-out" "fanout 1000,5000,10000 10 10"
  "$bin/fanout" 1000,5000,10000 10 10
  section "Ingest" "ingest 10 200000"
  "$bin/ingest" 10 200000
  section "The publisher beside its peers, 1 reading/s" "peers 60"
  HOSTPULSE_PUBLISHER_BIN="$agent" "$bin/peers" 60
  section "Consumer footprint and start-up" "footprint"
  "$bin/footprint"
  section "Broker restart" "broker_recovery 3 5"
  echo '```'; "$bin/broker_recovery" 3 5; echo '```'
  section "WebSocket churn" "ws_churn 5000 5"
  echo '```'; "$bin/ws_churn" 5000 5; echo '```'
  section "Dashboard with 50 hosts" "dashboard_hosts 50 30"
  echo '```'; "$bin/dashboard_hosts" 50 30; echo '```'
  section "First paint with 1,000 hosts" "first_paint 1000 60"
  echo '```'; "$bin/first_paint" 1000 60; echo '```'
  section "History: writes and queries" "history 60 10"
  echo '```'; "$bin/history" 60 10; echo '```'
  section "Drawing a history range" "range_draw 20 100"
  echo '```'; "$bin/range_draw" 20 100; echo '```'
  section "A burst of wrong logins" "login_burst 64 5"
  "$bin/login_burst" 64 5
  section "Alerts: notification delay, and CPU at 1,000 hosts" "alerts 100 10 1000 20 2"
  "$bin/alerts" 100 10 1000 20 2
} | tee "$sections"
{
  echo "# Benchmarks"
  echo
  echo "Written whole by \`bench/run.sh\` in one run; nothing here is edited by hand (notes on"
  echo "experiments are in [docs/performance.md](docs/performance.md))."
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); $(rabbitmqctl version 2>/dev/null | head -1 | sed 's/^/RabbitMQ /')"
  echo "Date: $(date -u +%Y-%m-%d). Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes'). Command: \`bench/run.sh\`."
  echo "Every figure below comes from one binary in \`bench/src/bin/\`, named in its section's"
  echo "heading; everything ran on this one machine, clients and broker included. A floor is the"
  echo "same work done with nothing of the product around it; a peer is another monitor doing"
  echo "the same job on the same host."
  echo
  echo "## Summary"
  echo
  echo "| figure | floor or peer | hostpulse | ratio | goal |"
  echo "|---|---|---|---|---|"
  awk -F '\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$BENCH_SUMMARY"
  cat "$sections"
} > "$whole"
# Written elsewhere first: truncating BENCHMARKS.md before the header is made would count as
# an uncommitted change in it.
mv "$whole" BENCHMARKS.md
say "wrote BENCHMARKS.md"
