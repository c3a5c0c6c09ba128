# syntax=docker/dockerfile:1
#
# tenderly-exporter container image: a Rust builder stage and a distroless
# runtime (no shell, no package manager, runs as uid 65532 "nonroot").
#
#   docker build --build-arg TENDERLY_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD) \
#       -t tenderly-exporter .
#   podman build ...   (same arguments)
#
# The build has NOT been run in this repository's CI or test suite: the
# machine it is developed on has no registry access to pull the base images
# (see docs/kubernetes.md, "Container image").
#
# Secrets: never baked in and never in argv. Pass them as files
# (--redis.password-file, --mongodb.password-file, --mongodb.uri-file,
# password_file: in --config.file; mount a Kubernetes Secret or a Docker
# secret) or as environment variables named by password_env: in the config
# file.
#
# Health: distroless has no shell or curl, so there is no HEALTHCHECK
# instruction. Probe over HTTP instead, as deploy/kubernetes/deployment.yaml
# does:
#   liveness   GET /-/healthy   (200 while the process serves HTTP)
#   readiness  GET /-/ready     (200 once the listener and config are up)
# With plain Docker, check from outside:
#   curl -fsS http://127.0.0.1:9879/-/healthy

# The toolchain the lockfile is built and tested with (the MSRV is 1.88).
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# The git revision for tenderly_exporter_build_info (.git is not in the
# build context, see .dockerignore).
ARG TENDERLY_EXPORTER_REVISION=unknown
ENV TENDERLY_EXPORTER_REVISION=${TENDERLY_EXPORTER_REVISION}
# Manifests and the vendored mongodb crate first ([patch.crates-io] in
# Cargo.toml points at vendor/mongodb), so the dependency layer is cached
# across source changes.
COPY Cargo.toml Cargo.lock build.rs ./
COPY vendor ./vendor
# Only the host target's crates: the registry is not needed again below.
RUN cargo fetch --locked --target "$(rustc -vV | sed -n 's/^host: //p')"
COPY src ./src
RUN cargo build --release --locked --offline --bin tenderly-exporter \
    && install -D -m 0755 target/release/tenderly-exporter /out/tenderly-exporter

# cc: glibc, libgcc and ca-certificates (rustls uses the webpki roots compiled
# in; the certificates are for anything that reads the system store).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/tenderly-exporter /usr/local/bin/tenderly-exporter
# Also set in the base image; repeated so the image says so itself.
USER 65532:65532
EXPOSE 9879
ENTRYPOINT ["/usr/local/bin/tenderly-exporter"]
CMD ["--web.listen-address=:9879", "--config.file=/etc/tenderly-exporter/targets.yml"]
