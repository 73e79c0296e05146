#!/usr/bin/env bash
# Runs every test: installs what the tests need when missing (RabbitMQ, PostgreSQL, Docker, Chromium
# and its WebDriver, Prometheus, openssl, shellcheck, node with Lighthouse and axe-core; the
# scripts' tests install curl and python3-yaml), starts the broker, PostgreSQL and dockerd if they are
# not running, then runs ShellCheck, the deploy files' test, cargo fmt, clippy, the whole
# workspace's tests (the dashboard's in headless Chromium) and run.sh's test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_broker
# The publisher's container tests read a real Docker Engine.
ensure_docker
# The history store's tests create (and drop) a database of their own per test.
ensure_postgres
# rabbitmqctl lets tests look at the queues they declared.
need_packages rabbitmqctl rabbitmq-server
need_packages "chromium chromedriver" chromium chromium-driver
need_packages "prometheus promtool" prometheus
# The TLS test makes its own certificates.
need_packages openssl openssl
need_packages shellcheck shellcheck

say "shellcheck scripts/"
shellcheck -x scripts/*.sh scripts/tests/*.sh
say "scripts/tests/deploy.sh"
bash scripts/tests/deploy.sh
say "scripts/tests/one_amqp_client.sh"
bash scripts/tests/one_amqp_client.sh
# The dashboard's audit (consumer/tests/browser/audit.rs) runs Lighthouse 12 and axe-core with
# node, installed from npm into target/node when missing.
need_packages "node npm" nodejs npm
node_dir="${CARGO_TARGET_DIR:-target}/node"
if [ ! -f "$node_dir/node_modules/lighthouse/package.json" ] || [ ! -f "$node_dir/node_modules/axe-core/axe.min.js" ]; then
  say "installing lighthouse@12 and axe-core@4 into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error lighthouse@12 axe-core@4 >/dev/null
fi
export HOSTPULSE_NODE_DIR
HOSTPULSE_NODE_DIR="$(cd "$node_dir" && pwd)"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --quiet --all-targets -- -D warnings
say "cargo test"
# --no-fail-fast: every test binary runs, so one failure does not hide the others.
tests_failed=false
cargo test --workspace --no-fail-fast "$@" || tests_failed=true
# After cargo test, which built the debug binaries that run.sh's test runs (run even when a
# test failed: its result is worth having too).
say "scripts/tests/run_sh.sh"
bash scripts/tests/run_sh.sh
if "$tests_failed"; then
  say "cargo test FAILED (its summary is above)"
  exit 1
fi
