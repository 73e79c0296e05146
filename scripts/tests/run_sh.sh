#!/usr/bin/env bash
# Tests scripts/run.sh as a user meets it, against the debug binaries `cargo test` built
# (HOSTPULSE_PROFILE=debug) and the local RabbitMQ, on free loopback ports and an exchange of
# its own:
#   both up:        the dashboard URL printed once, after both answer; every line says who wrote it;
#                   Ctrl-C stops both and prints "stopped"
#   port taken:     the consumer's port in use -> non-zero, the consumer named, no URL
#   service exits:  the consumer dies at start -> non-zero, its own error shown, no URL
#   service hangs:  the consumer's port never opens -> non-zero after the bound, no URL
#   APP_PORT:       refused with one line naming CONSUMER_PORT and PUBLISHER_PORT
# Every wait is bounded; every process started here is stopped before the script ends. The
# services keep their files (history, outbox) in a temporary folder, never in the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

target_dir=${CARGO_TARGET_DIR:-target}
for bin in consumer publisher; do
  if [ ! -x "$target_dir/debug/$bin" ]; then
    say "run_sh: $target_dir/debug/$bin is missing (cargo test builds it): FAILED"
    exit 1
  fi
done
need_packages curl curl
need_packages rabbitmqctl rabbitmq-server

work=$(mktemp -d "${TMPDIR:-/tmp}/hostpulse-run-sh-test.XXXXXX")
# The services' files go to the test's folder: the defaults (./data, ./outbox) are in the checkout.
export DATA_DIR="$work/data" OUTBOX_DIR="$work/outbox"
# Anything in the checkout newer than this was written by the test.
touch "$work/started"
EXCHANGE_NAME="hostpulse-test-run-sh-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export EXCHANGE_NAME
export HOSTPULSE_PROFILE=debug HOSTPULSE_START_TIMEOUT_SECS=30
unset APP_PORT APP_HOST CONSUMER_PORT PUBLISHER_PORT CONSUMER_ENV_FILE PUBLISHER_ENV_FILE
# Each run.sh gets a process group of its own, so nothing it started can outlive the test.
groups=()
cleanup() {
  local g
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  rm -rf "$work"
  # The services declared the durable exchange; the broker's own CLI can delete it (AMQP
  # cannot be spoken from bash).
  if ! timeout 30 rabbitmqctl eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, \
      <<\"$EXCHANGE_NAME\">>), false, <<\"run_sh test\">>)." >/dev/null 2>&1; then
    say "run_sh: could not delete the exchange $EXCHANGE_NAME; it is left on the broker"
  fi
}
trap cleanup EXIT

failures=0
check() { # $1 = what a user would notice, then the command that must succeed
  local what=$1; shift
  if "$@"; then
    echo "  ok: $what"
  else
    echo "  FAILED: $what"
    failures=$((failures + 1))
  fi
}

# A port nothing listens on, from the range Linux does not hand out as ephemeral ports.
used_ports=" "
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    case "$used_ports" in *" $port "*) continue ;; esac
    if ! port_open "$port"; then used_ports="$used_ports$port "; echo "$port"; return 0; fi
  done
  echo "no free port found in 200 tries" >&2
  return 1
}

# Waits up to $2 seconds for $1 to end; true when it did.
ended_within() {
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# Starts run.sh in the background in its own process group; output to $work/$1.out. SIGINT
# is restored to its default (bash ignores it in background jobs), so Ctrl-C can be sent as a
# terminal sends it: to the whole group.
start_run_sh() { # $1 = name of the case; the environment is the caller's
  setsid env --default-signal=INT scripts/run.sh >"$work/$1.out" 2>&1 &
  run_pid=$!
  groups+=("$run_pid")
}

# Runs run.sh to its end (bounded by 60 s); its exit code in $run_code.
run_sh_to_end() { # $1 = name of the case
  start_run_sh "$1"
  if ended_within "$run_pid" 60; then
    run_code=0
    wait "$run_pid" || run_code=$?
  else
    run_code=timeout
  fi
}

show_output() { echo "  --- run.sh's output ($1):"; sed 's/^/  | /' "$work/$1.out"; }
# run.sh's own lines (the services' lines carry their name instead).
script_lines() { grep '^\[hostpulse\] ' "$work/$1.out" || true; }
no_dashboard_url() { ! script_lines "$1" | grep -q 'dashboard'; }
port_closed() { ! port_open "$1"; }
not() { ! "$@"; }
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" || true; }
ended_in_failure() { [ "$run_code" != 0 ] && [ "$run_code" != timeout ]; }
url_printed_once() { [ "$(grep -v '^consumer  | ' "$work/$1.out" | grep -c "$2")" = 1 ]; }
last_script_line_has() { [[ "$(script_lines "$1" | tail -n1)" == *"$2" ]]; }
unprefixed_lines() { grep -q -v -e '^consumer  | ' -e '^publisher | ' -e '^\[hostpulse\] ' "$work/$1.out"; }
has_escape_codes() { grep -q $'\033' "$work/$1.out"; }
script_says() { script_lines "$1" | grep -q -- "$2"; }
# The failing service's own lines come indented right below run.sh's report.
reports_error() { grep -A15 '^\[hostpulse\] .* failed to start' "$work/$1.out" | grep -q '^    .*'"$2"; }
one_line_naming_ports() {
  [ "$(wc -l <"$work/$1.out")" = 1 ] && grep -q 'APP_PORT.*CONSUMER_PORT.*PUBLISHER_PORT' "$work/$1.out"
}

echo "run_sh: both services up"
consumer_port=$(free_port)
publisher_port=$(free_port)
url="http://127.0.0.1:$consumer_port/"
CONSUMER_PORT=$consumer_port PUBLISHER_PORT=$publisher_port start_run_sh up
deadline=$((SECONDS + 60))
# run.sh's own line: the consumer logs the URL too, before run.sh knows both are up.
until grep -q "^\\[hostpulse\\] dashboard: .*$url" "$work/up.out" 2>/dev/null || ! kill -0 "$run_pid" 2>/dev/null \
  || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.1
done
check "the dashboard URL answers 200" [ "$(http_status "$url")" = 200 ]
check "the publisher answers on PUBLISHER_PORT" \
  [ "$(http_status "http://127.0.0.1:$publisher_port/health")" = 200 ]
check "run.sh prints the dashboard URL once" url_printed_once up "$url"
check "the URL is run.sh's last line" last_script_line_has up "$url"
# Each service's own start-up line, naming its port.
check "consumer lines are prefixed" grep -q '^consumer  | .*dashboard: http://127.0.0.1:'"$consumer_port" "$work/up.out"
check "publisher lines are prefixed" grep -q '^publisher | .*publish on request: http://127.0.0.1:'"$publisher_port" "$work/up.out"
check "every line says who wrote it" not unprefixed_lines up
check "no colour codes in output that is not a terminal" not has_escape_codes up
# Ctrl-C: the terminal sends SIGINT to every process of the foreground group.
kill -INT -- "-$run_pid" 2>/dev/null || true
check "Ctrl-C ends run.sh" ended_within "$run_pid" 30
run_code=0
wait "$run_pid" || run_code=$?
check "with exit code 130" [ "$run_code" = 130 ]
check "run.sh says \"stopped\", last" last_script_line_has up "stopped"
check "the consumer is stopped with it" port_closed "$consumer_port"
check "the publisher is stopped with it" port_closed "$publisher_port"
check "the consumer kept its history in DATA_DIR" [ -f "$work/data/history.sqlite" ]
[ "$failures" -eq 0 ] || show_output up

echo "run_sh: SIGTERM"
failures_before=$failures
consumer_port=$(free_port)
publisher_port=$(free_port)
CONSUMER_PORT=$consumer_port PUBLISHER_PORT=$publisher_port start_run_sh term
deadline=$((SECONDS + 60))
until script_says term "dashboard: " || ! kill -0 "$run_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.1
done
kill -TERM "$run_pid" 2>/dev/null || true
check "SIGTERM ends run.sh" ended_within "$run_pid" 30
check "run.sh says \"stopped\", last" last_script_line_has term "stopped"
check "the consumer is stopped with it" port_closed "$consumer_port"
check "the publisher is stopped with it" port_closed "$publisher_port"
[ "$failures" -eq "$failures_before" ] || show_output term

echo "run_sh: the consumer's port already taken"
failures_before=$failures
taken_port=$(free_port)
publisher_port=$(free_port)
# Something listening on the consumer's port: another publisher, with nothing to publish.
APP_PORT=$taken_port PUBLISH_INTERVAL_SECS=0 setsid "$target_dir/debug/publisher" >"$work/holder.out" 2>&1 &
holder=$!
groups+=("$holder")
deadline=$((SECONDS + 30))
until port_open "$taken_port" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
check "the port holder listens" port_open "$taken_port"
CONSUMER_PORT=$taken_port PUBLISHER_PORT=$publisher_port run_sh_to_end taken
check "run.sh exits non-zero" ended_in_failure
check "run.sh names the consumer and its port" script_says taken "consumer.*port $taken_port"
check "run.sh prints no dashboard URL" no_dashboard_url taken
check "no publisher is left running" port_closed "$publisher_port"
kill -TERM "$holder" 2>/dev/null || true
ended_within "$holder" 30 || kill -KILL "$holder" 2>/dev/null || true
[ "$failures" -eq "$failures_before" ] || show_output taken

echo "run_sh: the consumer exits at start"
failures_before=$failures
consumer_port=$(free_port)
publisher_port=$(free_port)
CONSUMER_ENV_FILE="$work/no-such.env" CONSUMER_PORT=$consumer_port PUBLISHER_PORT=$publisher_port \
  run_sh_to_end exits
check "run.sh exits non-zero" ended_in_failure
check "run.sh says the consumer failed to start" script_says exits "consumer failed to start: it exited"
check "run.sh shows the consumer's own error under it" reports_error exits "no-such.env"
check "run.sh prints no dashboard URL" no_dashboard_url exits
check "the publisher it started is stopped" port_closed "$publisher_port"
[ "$failures" -eq "$failures_before" ] || show_output exits

echo "run_sh: the consumer hangs at start"
failures_before=$failures
consumer_port=$(free_port)
publisher_port=$(free_port)
# A settings file nobody writes: the consumer blocks reading it and never opens its port.
mkfifo "$work/blocking.env"
CONSUMER_ENV_FILE="$work/blocking.env" HOSTPULSE_START_TIMEOUT_SECS=2 CONSUMER_PORT=$consumer_port \
  PUBLISHER_PORT=$publisher_port run_sh_to_end hangs
check "run.sh exits non-zero" ended_in_failure
check "run.sh says the consumer's port did not open in time" \
  script_says hangs "consumer failed to start: port $consumer_port did not open within 2 s"
check "run.sh prints no dashboard URL" no_dashboard_url hangs
check "the publisher it started is stopped" port_closed "$publisher_port"
[ "$failures" -eq "$failures_before" ] || show_output hangs

echo "run_sh: a bare APP_PORT"
failures_before=$failures
APP_PORT=$(free_port) run_sh_to_end app_port
check "run.sh refuses it (exit code 2)" [ "$run_code" = 2 ]
check "one line, naming CONSUMER_PORT and PUBLISHER_PORT" one_line_naming_ports app_port
[ "$failures" -eq "$failures_before" ] || show_output app_port

echo "run_sh: the checkout"
# What the services or run.sh wrote into the checkout (its build folder aside).
written_into_checkout() {
  find . \( -path ./.git -o -path ./target -o -path "./$target_dir" \) -prune \
    -o -newer "$work/started" -print | grep -v '^\.$' || true
}
nothing_written_into_checkout() { [ -z "$(written_into_checkout)" ]; }
check "nothing was written into the checkout" nothing_written_into_checkout
written_into_checkout | sed 's/^/  | /'

if [ "$failures" -ne 0 ]; then
  say "run_sh: $failures check(s) FAILED"
  exit 1
fi
say "run_sh: all checks passed"
