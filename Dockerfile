# syntax=docker/dockerfile:1

# One image holds every program; each compose service picks its binary with
# `command:`. deploy/deploytest checks the rules noted below.

# Build stage. The Go version must equal go.mod's `go` line, so the image
# builds with exactly the toolchain the tests ran with.
FROM golang:1.26.8-alpine AS build
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download
# Then the sources (.dockerignore keeps the context to what the build reads).
COPY . .
# Static binaries (no cgo) run on plain alpine; -trimpath and -s -w keep
# build paths and debug tables out of the image.
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/ \
        ./cmd/api ./cmd/worker ./cmd/scheduler ./cmd/sink

# Run stage. Alpine rather than distroless so that healthchecks can use
# busybox wget; ca-certificates so that an https WEBHOOK_URL verifies.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates \
    && addgroup -S -g 10001 app \
    && adduser -S -D -H -u 10001 -G app -s /sbin/nologin app
WORKDIR /app
COPY --from=build /out/ /app/
# A numeric user lets an orchestrator prove the container is not root.
USER 10001:10001
# 8080: the api (HTTP_PORT); 9090: a worker's /metrics (METRICS_PORT).
EXPOSE 8080 9090
CMD ["/app/api"]
