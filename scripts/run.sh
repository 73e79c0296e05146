#!/usr/bin/env bash
# Runs hostpulse: starts RabbitMQ if needed, builds, starts the consumer and a publisher
# (publishing every second), and prints the dashboard URL once both answer. Ctrl-C stops both
# and prints "stopped" once they have.
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

# A variable's last value in a .env file (regular files only: the services report the others).
env_file_value() { # $1 = variable, $2 = env file
  [ -f "$2" ] || return 0
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$2" | tail -n1 | tr -d "\"' \r"
}
# Ports: CONSUMER_PORT / PUBLISHER_PORT, else APP_PORT from the service's .env file, else the default.
consumer_env_file=${CONSUMER_ENV_FILE:-consumer.env}
publisher_env_file=${PUBLISHER_ENV_FILE:-publisher.env}
consumer_port=${CONSUMER_PORT:-$(env_file_value APP_PORT "$consumer_env_file")}
consumer_port=${consumer_port:-8003}
publisher_port=${PUBLISHER_PORT:-$(env_file_value APP_PORT "$publisher_env_file")}
publisher_port=${publisher_port:-8000}
# Where to look for each service and what URL to print: its APP_HOST as the service reads it
# (the environment, then its .env file), the loopback address for "every address".
probe_host() { # $1 = env file
  local host=${APP_HOST:-$(env_file_value APP_HOST "$1")}
  case "$host" in
    '' | 0.0.0.0 | '::' | '[::]') echo 127.0.0.1 ;;
    *) echo "$host" ;;
  esac
}
consumer_host=$(probe_host "$consumer_env_file")
publisher_host=$(probe_host "$publisher_env_file")
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
for pair in "consumer=$consumer_host:$consumer_port" "publisher=$publisher_host:$publisher_port"; do
  name=${pair%%=*} address=${pair#*=}
  if port_open "${address##*:}" "${address%:*}"; then
    say "$name cannot start: port ${address##*:} on ${address%:*} is already in use; set ${name^^}_PORT to a free one"
    exit 1
  fi
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/hostpulse-run.XXXXXX")
declare -A pid_of=() port_of=() host_of=() printer_of=()
port_of[consumer]=$consumer_port
port_of[publisher]=$publisher_port
host_of[consumer]=$consumer_host
host_of[publisher]=$publisher_host
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
  # Ctrl-C or a SIGTERM to the whole group: keep printing until the service's last line.
  trap '' INT TERM HUP
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

# Stops a service (SIGTERM; the publisher then delivers what it still holds), waiting a bounded
# time for it and for the last of its output.
terminate() { # $1 = name
  local name=$1 pid=${pid_of[$1]}
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop within 15 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" "${printer_of[$name]}" 2>/dev/null || true
}

# shellcheck disable=SC2317  # run by the traps below
stop() {
  "$stopped" && return 0
  stopped=true
  local name
  for name in "${!pid_of[@]}"; do kill -TERM "${pid_of[$name]}" 2>/dev/null || true; done
  for name in "${!pid_of[@]}"; do terminate "$name"; done
  rm -rf "$logs"
}
trap stop EXIT
# Ctrl-C (or SIGTERM, or the terminal closing) while the services run: say that both stopped.
# shellcheck disable=SC2317  # run by the traps below
stopped_by_signal() { # $1 = exit code
  local had_services=${#pid_of[@]}
  stop
  [ "$had_services" -eq 0 ] || say "stopped"
  exit "$1"
}
trap 'stopped_by_signal 130' INT
trap 'stopped_by_signal 143' TERM
trap 'stopped_by_signal 129' HUP

# Names a service that did not come up and shows its last log lines.
report_failure() { # $1 = name, $2 = what happened
  terminate "$1"
  say "$1 failed to start: $2. Its last log lines:"
  tail -n 15 "$logs/$1.log" | sed 's/^/    /' >&2
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
      report_failure "$name" "it exited with code $code before opening port ${port_of[$name]}"
      exit 1
    elif ! port_open "${port_of[$name]}" "${host_of[$name]}"; then
      still+=("$name")
    fi
  done
  waiting=("${still[@]}")
  [ "${#waiting[@]}" -eq 0 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    for name in "${waiting[@]}"; do
      report_failure "$name" "port ${port_of[$name]} did not open within $start_timeout s (HOSTPULSE_START_TIMEOUT_SECS)"
    done
    exit 1
  fi
  sleep 0.1
done

say "both services are up; Ctrl-C stops them"
url_host() { case "$1" in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; } # IPv6 in brackets
say "publish now: http://$(url_host "$publisher_host"):${publisher_port}/publish"
say "dashboard:   http://$(url_host "$consumer_host"):${consumer_port}/"

code=0
wait -n -p gone "${pid_of[consumer]}" "${pid_of[publisher]}" || code=$?
for name in consumer publisher; do
  if [ "${pid_of[$name]}" = "${gone:-}" ]; then say "$name stopped (exit code $code); stopping the other"; fi
done
exit 1
