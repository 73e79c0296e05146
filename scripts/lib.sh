# shellcheck shell=bash
# Shared by the project's scripts: installing Debian packages and starting RabbitMQ.
# Sourced, not run.

# Bold only on a terminal: a log file or a pipe gets plain text.
say() {
  if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
    printf '\033[1m[hostpulse]\033[0m %s\n' "$*" >&2
  else
    printf '[hostpulse] %s\n' "$*" >&2
  fi
}

# Installs the Debian packages named, when any command in $1 (space-separated) is missing.
# Usage: need_packages "cmd1 cmd2" pkg1 pkg2 ...
need_packages() {
  local commands=$1; shift
  local missing=""
  for c in $commands; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
  [ -z "$missing" ] && return 0
  install_packages "missing:$missing" "$@"
}

# Installs Debian packages (as root; otherwise says what to run and fails).
# Usage: install_packages "why" pkg1 pkg2 ...
install_packages() {
  local why=$1; shift
  if [ "$(id -u)" -ne 0 ]; then
    say "$why. Install them with: sudo apt-get install -y $*"
    return 1
  fi
  say "installing $* ($why)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "$@" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q "$@" >/dev/null
  fi
}

# True when something accepts TCP connections on port $1 of $2 (default 127.0.0.1); an address
# that does not answer at all counts as closed after 2 s.
port_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${2:-127.0.0.1}" "$1" 2>/dev/null
}

# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672 (installing and starting it if needed).
ensure_broker() {
  if port_open 5672; then return 0; fi
  need_packages "rabbitmq-server rabbitmqctl" rabbitmq-server || return 1
  say "starting RabbitMQ"
  if [ "$(id -u)" -eq 0 ] || [ "$(id -un)" = rabbitmq ]; then
    rabbitmq-server -detached >/dev/null 2>&1 || true
  else
    say "RabbitMQ is not running. Start it with: sudo rabbitmq-server -detached"
    return 1
  fi
  for _ in $(seq 1 120); do
    if port_open 5672; then say "RabbitMQ is up on 127.0.0.1:5672"; return 0; fi
    sleep 0.5
  done
  say "RabbitMQ did not open port 5672 within 60 s; see /var/log/rabbitmq/"
  return 1
}
