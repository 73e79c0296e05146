#!/usr/bin/env bash
# Tests what a user of deploy/ meets before Docker runs anything: the passwords file stays out
# of git and of the image's build context, and the Compose file is valid YAML that publishes no
# port a broker already on the host holds (AMQP 5672).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

need_packages "git python3" git python3
python3 -c 'import yaml' 2>/dev/null || install_packages "missing: python3's yaml module" python3-yaml

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

# Host ports the Compose file publishes, one a line ("service host_ip:port"); fails on bad YAML.
published_ports() {
  python3 - deploy/docker-compose.yml <<'PY'
import sys, yaml
with open(sys.argv[1]) as f:
    compose = yaml.safe_load(f)
for name, service in compose["services"].items():
    for port in service.get("ports", []):
        if isinstance(port, dict):  # the long syntax
            print(name, f'{port.get("host_ip", "")}:{port.get("published", "")}')
            continue
        parts = str(port).split(":")
        # "container", "host:container" or "ip:host:container"
        host = ":".join(parts[:-1]) if len(parts) > 1 else ""
        print(name, host)
PY
}
read_ports() { ports=$(published_ports); }
publishes_no_amqp() { ! grep -E '(^| |:)5672$' <<<"$ports"; }
loopback_only() { ! grep -v -E ' 127\.0\.0\.1:[0-9]+$' <<<"$ports"; }

echo "deploy: passwords and ports"
check "git ignores deploy/.env" git check-ignore -q deploy/.env
check "the image's build context leaves deploy/.env out" grep -qx 'deploy/.env' .dockerignore
ports=""
check "docker-compose.yml is valid YAML with services" read_ports
check "no service publishes AMQP (5672) on the host" publishes_no_amqp
check "every published port is on 127.0.0.1" loopback_only
check "the dashboard is still published" grep -qx 'consumer 127.0.0.1:8003' <<<"$ports"

if [ "$failures" -ne 0 ]; then
  say "deploy: $failures check(s) FAILED"
  exit 1
fi
say "deploy: all checks passed"
