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

# True when a Docker Engine answers on its default socket.
docker_answers() {
  [ -S /var/run/docker.sock ] && timeout 10 docker version >/dev/null 2>&1
}

# Makes sure a Docker Engine answers on /var/run/docker.sock for the container tests (Debian's
# docker.io, and busybox-static for the image they make with `docker import`), starting dockerd
# when none runs; its log goes to /var/log/hostpulse/dockerd.log.
ensure_docker() {
  need_packages "dockerd docker" docker.io || return 1
  dpkg -s busybox-static >/dev/null 2>&1 || install_packages "the container tests' image" busybox-static || return 1
  if docker_answers; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    say "The Docker Engine is not running. Start it with: sudo dockerd"
    return 1
  fi
  local log=/var/log/hostpulse/dockerd.log
  mkdir -p "$(dirname "$log")"
  say "starting dockerd (its log: $log)"
  setsid dockerd >>"$log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if docker_answers; then say "the Docker Engine is up on /var/run/docker.sock"; return 0; fi
    sleep 0.5
  done
  say "dockerd did not answer within 60 s; the end of $log:"
  tail -n 20 "$log" >&2
  return 1
}

# True when the postgres user connects over 127.0.0.1 without a password (as the tests do).
postgres_trusts_loopback() {
  PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
}

# Makes sure PostgreSQL answers on 127.0.0.1:5432 for the history store's tests (installing
# Debian's `postgresql` and starting its cluster if needed). A fresh Debian install asks for a
# password on 127.0.0.1; only if connecting fails is the postgres user trusted from 127.0.0.1
# (one line at the top of pg_hba.conf, said out loud).
ensure_postgres() {
  need_packages "pg_ctlcluster psql" postgresql || return 1
  local version
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  if ! port_open 5432; then
    if [ -z "$version" ]; then
      say "PostgreSQL is installed but has no cluster in /etc/postgresql; create one with: pg_createcluster --start 15 main"
      return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
      say "PostgreSQL is not running. Start it with: sudo pg_ctlcluster --skip-systemctl-redirect $version main start"
      return 1
    fi
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 120); do
      port_open 5432 && break
      sleep 0.5
    done
    if ! port_open 5432; then
      say "PostgreSQL did not open port 5432 within 60 s; see /var/log/postgresql/"
      return 1
    fi
    say "PostgreSQL is up on 127.0.0.1:5432"
  fi
  postgres_trusts_loopback && return 0
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ "$(id -u)" -ne 0 ] || [ ! -f "$hba" ]; then
    say "the tests connect as postgres to 127.0.0.1:5432 without a password; allow it with the line 'host all postgres 127.0.0.1/32 trust' at the top of $hba"
    return 1
  fi
  say "connecting as postgres over 127.0.0.1 failed: trusting the postgres user from 127.0.0.1 only (top line of $hba)"
  sed -i '1i host all postgres 127.0.0.1/32 trust  # added by hostpulse scripts/test.sh' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 20); do
    postgres_trusts_loopback && return 0
    sleep 0.5
  done
  say "still cannot connect as postgres over 127.0.0.1; see $hba"
  return 1
}
