package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc/credentials"

	"github.com/sessiontrace/sessiontrace/consumer/export"
)

// defaultServiceName is the resource's service.name unless OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES say otherwise.
const defaultServiceName = "sessiontrace"

// kafkaOpts turns the connection settings into franz-go options: client ID,
// TLS and SASL. Brokers, group and topics are the consumer's (or the
// caller's) business.
func (k kafkaConfig) kafkaOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.ClientID(k.ClientID)}
	if k.TLS.Enabled {
		tc, err := k.TLS.build("kafka.tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	s := k.SASL
	switch s.Mechanism {
	case saslPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: string(s.Password)}.AsMechanism()))
	case saslSCRAMSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha256Mechanism()))
	case saslSCRAMSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha512Mechanism()))
	}
	return opts, nil
}

// kafkaClient is a plain client (no group) for record, simulate and replay
// --topic, with the configured security.
func (k kafkaConfig) kafkaClient(extra ...kgo.Opt) (*kgo.Client, error) {
	if len(k.Brokers) == 0 {
		return nil, fmt.Errorf("%w: kafka.brokers: no brokers (set --brokers or %s)", errInvalidConfig, envName("kafka.brokers"))
	}
	opts, err := k.kafkaOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.SeedBrokers(k.Brokers...))
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// build makes a tls.Config from the PEM files; prefix names the keys in
// errors.
func (t tlsConfig) build(prefix string) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // off by default, documented as testing only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.ca_file: %w", errInvalidConfig, prefix, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s.ca_file %s: no PEM certificate found", errInvalidConfig, prefix, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.cert_file/key_file: %w", errInvalidConfig, prefix, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// newExporter builds the process's one OTLP/gRPC trace client, started, and
// the SDK span exporter over it: the sdk export path exports through the
// exporter, the direct path uploads through the client, so both share one
// connection and every setting. Shutting the exporter down stops the client.
// Settings left empty fall to the client, which reads the
// OTEL_EXPORTER_OTLP_* variables itself. retryInitial and retryMax are the
// lanes' retry bounds, which bound gRPC's reconnect backoff too.
func (o otlpConfig) newExporter(ctx context.Context, retryInitial, retryMax time.Duration) (*otlptrace.Exporter, otlptrace.Client, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(o.Timeout)}
	if o.Endpoint != "" {
		opts = append(opts, otlptracegrpc.WithEndpoint(o.Endpoint))
	}
	if o.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	tc, headers, err := o.credentials()
	if err != nil {
		return nil, nil, err
	}
	if tc != nil {
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)))
	}
	if o.Compression != "" {
		opts = append(opts, otlptracegrpc.WithCompressor(o.Compression))
	}
	if headers != nil {
		opts = append(opts, otlptracegrpc.WithHeaders(headers))
	}
	// The lanes retry a failed export themselves, with back-pressure and
	// without a deadline, and classify every outcome; export.ClientOptions
	// turns the client's own retry off and lets partial success through.
	opts = append(opts, export.ClientOptions(retryInitial, retryMax)...)
	client := otlptracegrpc.NewClient(opts...)
	exp, err := otlptrace.New(ctx, client) // starts the client
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	return exp, client, nil
}

// readHeaders reads name=value lines; blank lines and # comments are
// skipped. Values are never echoed in errors.
func readHeaders(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseHeaders(f, path)
}

func parseHeaders(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want name=value", name, line)
		}
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		if err := checkHeader(k, v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// envHeaders parses the standard OTLP header variables, traces-specific
// winning, in their W3C-baggage-like form: comma-separated name=value pairs
// with URL-encoded values. A pair gRPC would refuse to send is an error
// naming the variable and the header (never its value).
func envHeaders() (map[string]string, error) {
	out := map[string]string{}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for pair := range strings.SplitSeq(os.Getenv(name), ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if !ok || k == "" {
				return nil, fmt.Errorf("%s: want name=value pairs separated by commas", name)
			}
			if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
				v = dv
			}
			if err := checkHeader(k, v); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[k] = v
		}
	}
	return out, nil
}

// checkHeader applies gRPC's metadata rules to one lower-cased header, as
// grpc-go does before every call (where a violation fails each export with
// Internal), plus the names gRPC reserves for itself and would silently
// replace. The value is never quoted: headers carry API keys.
func checkHeader(k, v string) error {
	if strings.HasPrefix(k, "grpc-") || reservedHeaders[k] {
		return fmt.Errorf("header %q: the name is reserved by gRPC", k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("header %q: a name may only hold a-z, 0-9, '-', '_' and '.'", k)
		}
	}
	if strings.HasSuffix(k, "-bin") {
		return nil // binary values are base64-encoded on the wire
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("header %q: the value holds a character that is not printable ASCII (a name ending in -bin takes binary values)", k)
		}
	}
	return nil
}

// reservedHeaders are the HTTP/2 headers a gRPC client sets itself.
var reservedHeaders = map[string]bool{"content-type": true, "user-agent": true, "te": true}

// newResource describes this process on every exported span. It reads
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over the
// default service.name; nothing host- or process-specific is added, so a
// replay's payloads depend only on its input and configuration.
func newResource(ctx context.Context) (*resource.Resource, error) {
	r, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", defaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("resource: %w", err)
	}
	return r, nil
}

// newLogger builds the process logger on w.
func newLogger(cfg logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated before
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
