#!/usr/bin/env bash
# One AMQP client per binary: the publisher (on every monitored host) links amqprs and never
# lapin; the consumer links lapin and never amqprs. `shared` keeps lapin behind its `lapin`
# feature, which only the consumer enables. Reads Cargo.lock and the manifests; builds nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

failures=0
# $1 = package, $2 = the client it must link, $3 = the client it must not link
check() {
  local tree
  tree=$(cargo tree --quiet -p "$1" -e normal --prefix none)
  if ! grep -q "^$2 v" <<<"$tree"; then
    say "FAIL: $1 does not link $2"
    failures=$((failures + 1))
  fi
  if grep -q "^$3 v" <<<"$tree"; then
    say "FAIL: $1 links $3 as well as $2:"
    cargo tree --quiet -p "$1" -e normal -i "$3" >&2
    failures=$((failures + 1))
  fi
}
check publisher amqprs lapin
check consumer lapin amqprs
[ "$failures" -eq 0 ] && say "one AMQP client per binary: publisher amqprs, consumer lapin"
exit "$failures"
