#!/usr/bin/env bash
# Runs hostpulse: starts RabbitMQ if needed, builds, starts the consumer and a publisher
# (publishing every second), and prints the dashboard URL once both answer. Ctrl-C stops both.
#
#   CONSUMER_PORT=9100 PUBLISHER_PORT=9101 scripts/run.sh   # ports other than the .env files'
#   HOSTPULSE_PROFILE=debug scripts/run.sh                 # use target/debug, build nothing
#   HOSTPULSE_START_TIMEOUT_SECS=30                        # how long a service may take to start
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."
. scripts/lib.sh

# APP_PORT is each service's own setting: one value for both would make the second one fail.
if [ -n "${APP_PORT+set}" ]; then
  say "APP_PORT would give both services the same port: set CONSUMER_PORT (the dashboard) and/or PUBLISHER_PORT instead"
  exit 2
fi

profile=${HOSTPULSE_PROFILE:-release}
start_timeout=${HOSTPULSE_START_TIMEOUT_SECS:-30}
case "$profile" in
  release | debug) ;;
  *) say "HOSTPULSE_PROFILE must be release or debug, not '$profile'"; exit 2 ;;
esac
case "$start_timeout" in
  '' | *[!0-9]*) say "HOSTPULSE_START_TIMEOUT_SECS must be a whole number of seconds, not '$start_timeout'"; exit 2 ;;
esac

# Ports: CONSUMER_PORT / PUBLISHER_PORT, else APP_PORT from the service's .env file, else the default.
env_port() { # $1 = override, $2 = env file, $3 = default
  local from_file
  from_file=$(sed -n 's/^[[:space:]]*APP_PORT[[:space:]]*=[[:space:]]*//p' "$2" 2>/dev/null | tail -n1 | tr -d "\"' \r")
  echo "${1:-${from_file:-$3}}"
}
consumer_port=$(env_port "${CONSUMER_PORT:-}" "${CONSUMER_ENV_FILE:-consumer.env}" 8003)
publisher_port=$(env_port "${PUBLISHER_PORT:-}" "${PUBLISHER_ENV_FILE:-publisher.env}" 8000)
for pair in "CONSUMER_PORT=$consumer_port" "PUBLISHER_PORT=$publisher_port"; do
  port=${pair#*=}
  case "$port" in
    '' | *[!0-9]* | 0*) port_ok=false ;;
    *) if [ "$port" -le 65535 ]; then port_ok=true; else port_ok=false; fi ;;
  esac
  if [ "$port_ok" = false ]; then
    say "${pair%%=*} must be a port number from 1 to 65535, not '$port'"
    exit 2
  fi
done
if [ "$consumer_port" = "$publisher_port" ]; then
  say "the consumer and the publisher would both use port $consumer_port: set CONSUMER_PORT or PUBLISHER_PORT to another"
  exit 2
fi

ensure_broker
target_dir=${CARGO_TARGET_DIR:-target}
if [ "$profile" = release ]; then
  say "building (release; the first build takes several minutes, later ones seconds)"
  cargo build --release --bin consumer --bin publisher
else
  for bin in consumer publisher; do
    if [ ! -x "$target_dir/debug/$bin" ]; then
      say "$target_dir/debug/$bin is missing: build it with cargo build --bin consumer --bin publisher"
      exit 1
    fi
  done
fi
bin_dir="$target_dir/$profile"

# A port something else already listens on would make a service fail, while the port still
# answers: refuse before starting anything.
for pair in "consumer=$consumer_port" "publisher=$publisher_port"; do
  if port_open "${pair#*=}"; then
    name=${pair%%=*}
    say "$name cannot start: port ${pair#*=} on 127.0.0.1 is already in use; set ${name^^}_PORT to a free one"
    exit 1
  fi
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/hostpulse-run.XXXXXX")
declare -A pid_of=() port_of=() printer_of=()
port_of[consumer]=$consumer_port
port_of[publisher]=$publisher_port
stopped=false

# Copies a service's output to the terminal, each line prefixed with its name, and to its log
# file for the report when it fails. Colour only on a terminal: a file or a pipe gets plain text.
print_lines() { # $1 = service name, $2 = log file
  local label line colour=false
  label=$(printf '%-9s |' "$1")
  if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then colour=true; fi
  if "$colour"; then
    case "$1" in
      consumer) label=$'\033[36m'"$label"$'\033[0m' ;;
      *) label=$'\033[35m'"$label"$'\033[0m' ;;
    esac
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    # SGR sequences (colours, bold) only; a service that colours a pipe loses them here.
    "$colour" || line=${line//$'\033['*([0-9;])m/}
    printf '%s %s\n' "$label" "$line"
    printf '%s\n' "$line" >&3
  done 3>"$2"
}

start_service() { # $1 = name
  local name=$1 fifo="$logs/$1.pipe"
  mkfifo "$fifo"
  print_lines "$name" "$logs/$name.log" <"$fifo" &
  printer_of[$name]=$!
  APP_PORT=${port_of[$name]} "$bin_dir/$name" >"$fifo" 2>&1 &
  pid_of[$name]=$!
}

# Stops both services (SIGTERM; the publisher then delivers what it still holds) and waits a
# bounded time for them and for the last of their output.
# shellcheck disable=SC2317  # run by the traps below
stop() {
  "$stopped" && return 0
  stopped=true
  local name pid
  for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for name in "${!pid_of[@]}"; do
    pid=${pid_of[$name]}
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name did not stop within 15 s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait "${pid_of[@]}" "${printer_of[@]}" 2>/dev/null || true
  rm -rf "$logs"
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

# Names the service that did not come up, shows its last log lines and ends the script.
fail_start() { # $1 = name, $2 = what happened
  local name=$1
  kill -TERM "${pid_of[$name]}" 2>/dev/null || true
  wait "${pid_of[$name]}" "${printer_of[$name]}" 2>/dev/null || true
  say "$name failed to start: $2. Its last log lines:"
  tail -n 15 "$logs/$name.log" | sed 's/^/    /' >&2
  exit 1
}

start_service consumer
start_service publisher

deadline=$((SECONDS + start_timeout))
waiting=(consumer publisher)
while [ "${#waiting[@]}" -gt 0 ]; do
  still=()
  for name in "${waiting[@]}"; do
    if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
      code=0
      wait "${pid_of[$name]}" || code=$?
      fail_start "$name" "it exited with code $code before opening port ${port_of[$name]}"
    elif ! port_open "${port_of[$name]}"; then
      still+=("$name")
    fi
  done
  waiting=("${still[@]}")
  [ "${#waiting[@]}" -eq 0 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    fail_start "${waiting[0]}" "port ${port_of[${waiting[0]}]} did not open within $start_timeout s"
  fi
  sleep 0.1
done

say "both services are up; Ctrl-C stops them"
say "publish now: http://127.0.0.1:${publisher_port}/publish"
say "dashboard:   http://127.0.0.1:${consumer_port}/"

code=0
wait -n -p gone "${pid_of[consumer]}" "${pid_of[publisher]}" || code=$?
for name in consumer publisher; do
  if [ "${pid_of[$name]}" = "${gone:-}" ]; then say "$name stopped (exit code $code); stopping the other"; fi
done
exit 1
