#!/usr/bin/env bash
# Runs every test: installs what the tests need when missing (RabbitMQ, Chromium and its
# WebDriver, Prometheus, openssl, shellcheck; the scripts' tests install curl and python3-yaml),
# starts the broker if it is not running, then shellcheck, the deploy files' test, cargo fmt,
# clippy, the whole workspace's tests (the dashboard's in headless Chromium) and run.sh's test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_broker
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

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --quiet --all-targets -- -D warnings
say "cargo test"
cargo test --workspace "$@"
# After cargo test, which built the debug binaries that run.sh's test runs.
say "scripts/tests/run_sh.sh"
bash scripts/tests/run_sh.sh
