# Both hostpulse binaries in one small image; the compose file picks which one runs.
# Build: docker build -t hostpulse .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The publisher with the `agent` profile (small code, small RSS: it runs on every host).
# The publisher as shipped: the `agent` profile, glibc linked in (scripts/build-agent.sh).
RUN cargo build --release --locked --bin consumer \
 && cp "$(scripts/build-agent.sh --locked)" /src/publisher-agent

FROM debian:bookworm-slim
# ca-certificates: amqps:// verifies the broker against the system's roots.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home hostpulse
COPY --from=build /src/target/release/consumer /usr/local/bin/
COPY --from=build /src/publisher-agent /usr/local/bin/publisher
USER hostpulse
# Settings come from the environment; no .env file is read inside the container.
ENV APP_HOST=0.0.0.0
