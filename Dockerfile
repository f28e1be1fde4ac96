# The analysis image: the pinned nightly and cargo tools read from pin/toolchain.toml, the
# system tools the stages use, and runner as the entrypoint, run as a non-root user on the
# workspace mounted at /src.
#
#   docker build -t runner .
#   docker run --rm -v "$PWD:/src" -u "$(id -u):$(id -g)" --cap-add SYS_PTRACE runner all
#
# `--cap-add SYS_PTRACE` lets LeakSanitizer work inside the container. With `-u` the files
# runner writes (target/) belong to you, not to root. After `cargo fetch` on the host, the
# analysis needs no network: add `--network none` and pass `--offline`.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS rust
ENV RUSTUP_HOME=/opt/rust/rustup \
    CARGO_HOME=/opt/rust/cargo \
    PATH=/opt/rust/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A minbase Debian has neither CA certificates nor curl. A TLS-intercepting proxy's CA can be
# added through docker/ca-certificates/ (see the README there).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates
# umask 0000: everything installed stays usable by whichever user `docker run -u` picks,
# without a chmod -R that would copy every file into another layer.
RUN umask 0000 \
 && curl --proto '=https' --tlsv1.2 -sSf -o /tmp/rustup-init \
      "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init" \
 && chmod +x /tmp/rustup-init \
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain none \
 && rm /tmp/rustup-init
COPY pin/toolchain.toml /opt/runner/pin/toolchain.toml
# The toolchain exactly as the pin says: channel, profile and components come from the file.
RUN umask 0000 \
 && pin=/opt/runner/pin/toolchain.toml \
 && channel=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$pin") \
 && profile=$(sed -n 's/^profile = "\(.*\)"$/\1/p' "$pin") \
 && components=$(sed -n 's/^components = \[\(.*\)\]$/\1/p' "$pin" | tr -d '" ' | tr ',' ' ') \
 && rustup toolchain install "$channel" --profile "$profile" \
      $(for component in $components; do printf -- '--component %s ' "$component"; done) \
 && rustup default "$channel"

FROM rust AS build
WORKDIR /build
COPY . .
RUN cargo build --release --locked -p runner

FROM rust AS final
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      valgrind llvm qemu-user-static gcc-s390x-linux-gnu libc6-dev-s390x-cross git \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/target/release/runner /usr/local/bin/runner
ENV RUNNER_CACHE_DIR=/opt/runner/cache \
    XDG_CACHE_HOME=/opt/cache \
    HOME=/home/runner
# The pinned cargo tools and the Miri sysroots, installed by runner itself so the versions come
# from the pin. STAGES trims the set for quicker builds (for example STAGES=miri).
ARG STAGES=miri,fuzz,coverage
RUN umask 0000 \
 && runner setup --stages "$STAGES" \
 && useradd --create-home --uid 1000 runner \
 && chmod 0777 /home/runner
ARG REVISION=unknown
# Inside, runner uses the tools on PATH and checks that rustc is the pinned one.
ENV RUNNER_HERMETIC=docker \
    RUNNER_PROVENANCE="docker image built from runner revision ${REVISION}"
USER runner
WORKDIR /src
ENTRYPOINT ["runner"]
CMD ["all"]
