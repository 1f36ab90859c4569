# syntax=docker/dockerfile:1
# A small static image of the sessiontrace command: build with the Go toolchain, run on distroless.
#   docker build -t sessiontrace .
#   docker run --rm sessiontrace demo

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sessiontrace ./cmd/sessiontrace

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessiontrace /usr/local/bin/sessiontrace
USER nonroot:nonroot
# /healthz, /readyz and /metrics of `sessiontrace consume` (set SESSIONTRACE_HTTP_ADDRESS=0.0.0.0:8088).
EXPOSE 8088
ENTRYPOINT ["/usr/local/bin/sessiontrace"]
CMD ["demo"]
