# syntax=docker/dockerfile:1
# latticed container image: one static binary on distroless, running as a
# non-root user. Build it with `make image` (passes VERSION and COMMIT from git).
#
#   docker run --rm -p 9464:9464 -v latticed-data:/data latticed:dev
#
# Defaults baked in (override with -e):
#   LATTICED_DATA_DIR=/data               keys, JetStream store, compile cache
#   LATTICED_METRICS_ADDR=0.0.0.0:9464    /metrics /healthz /readyz must be
#                                         reachable from outside the container
#                                         (kubelet probes, Prometheus)
# The embedded NATS server (used only when no WASMCLOUD_RPC_HOST/CTL_HOST is
# set) keeps its loopback default, 127.0.0.1:4222: it has no authentication.
# Set LATTICED_NATS_LISTEN=0.0.0.0:4222 to publish port 4222 deliberately.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
# wire/ and actor/ are modules of their own that go.mod replaces by their
# directories: go mod download reads their go.mod files.
COPY go.mod go.sum ./
COPY wire/go.mod wire/
COPY actor/go.mod actor/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The same command as on a workstation: the Makefile is the one source of
# truth for build flags (static, trimmed, version-stamped).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} make build VERSION=${VERSION} COMMIT=${COMMIT}
# /data is owned by group 0 and group-writable (g=u), as the OpenShift image
# guidelines ask: there the container runs as an arbitrary UID in group 0
# (docker run --user 1000770000:0), which must still create /data/keys.
# latticed's own files inside stay private: dirs 0700, secrets 0600.
RUN mkdir -p /out/data && chmod 0770 /out/data && cp bin/latticed /out/latticed

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="latticed" \
      org.opencontainers.image.description="NATS-based wasmCloud-style lattice node" \
      org.opencontainers.image.source="https://github.com/latticed/latticed" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/latticed /usr/local/bin/latticed
COPY --from=build --chown=65532:0 --chmod=0770 /out/data /data
COPY --from=build /src/LICENSE /licenses/LICENSE
ENV LATTICED_DATA_DIR=/data \
    LATTICED_METRICS_ADDR=0.0.0.0:9464
VOLUME ["/data"]
# 4222: embedded NATS (only with LATTICED_NATS_LISTEN=0.0.0.0:4222); 9464: metrics/health.
EXPOSE 4222 9464
# Group 0, so that the default user and an arbitrary UID both own /data's group.
USER 65532:0
ENTRYPOINT ["/usr/local/bin/latticed"]
CMD ["up"]
