#!/usr/bin/env bash
# Builds the publisher as it is shipped to every host: the `agent` profile (code optimised for
# size) and glibc linked in statically, so no shared libc, libm or loader sits in its memory
# (about 1 MiB less RSS; BENCHMARKS.md, "The publisher beside its peers"). Host names are still
# resolved through the system's NSS modules, which glibc loads at run time: run the binary on
# the glibc it was built with (the Dockerfile builds and runs on Debian bookworm).
# Extra arguments go to cargo (e.g. --locked). Prints the binary's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
# With an explicit --target, RUSTFLAGS apply to the publisher and its dependencies only, not to
# build scripts and proc-macros (which cannot be static), and land in a folder of their own.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --profile agent --target "$target" -p publisher "$@" >&2
echo "${CARGO_TARGET_DIR:-target}/$target/agent/publisher"
