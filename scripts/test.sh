#!/usr/bin/env bash
# Runs every test: installs what the tests need when missing (RabbitMQ, PostgreSQL, Chromium
# and its WebDriver, Prometheus), starts the broker and PostgreSQL if they are not running, then formatting, lints and the whole
# workspace's tests (the dashboard's in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_broker
# The history store's tests create (and drop) a database of their own per test.
ensure_postgres
# rabbitmqctl lets tests look at the queues they declared.
need_packages rabbitmqctl rabbitmq-server
need_packages "chromium chromedriver" chromium chromium-driver
need_packages "prometheus promtool" prometheus
# The TLS test makes its own certificates.
need_packages openssl openssl

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --quiet --all-targets -- -D warnings
say "cargo test"
cargo test --workspace "$@"
