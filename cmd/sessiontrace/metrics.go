package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/sessiontrace/sessiontrace/consumer"
	"github.com/sessiontrace/sessiontrace/consumer/sessionmetrics"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// defaultMetricsInterval is the OTel SDK's own default export interval.
const defaultMetricsInterval = time.Minute

// metricsConfig configures the session metrics and where the process's
// metrics go besides /metrics.
type metricsConfig struct {
	sessionmetrics.Config `mapstructure:",squash"`
	// OTLP also pushes every metric over OTLP/gRPC to the span endpoint,
	// with the same TLS, headers and compression.
	OTLP bool `mapstructure:"otlp"`
	// Interval is how often metrics are pushed over OTLP.
	Interval time.Duration `mapstructure:"interval"`
}

func defaultMetricsConfig() metricsConfig {
	return metricsConfig{Config: sessionmetrics.DefaultConfig(), OTLP: true, Interval: defaultMetricsInterval}
}

func (m metricsConfig) validate() error {
	if err := m.Config.Validate(); err != nil {
		return fmt.Errorf("%w: metrics.%w", errInvalidConfig, err)
	}
	if m.Interval <= 0 {
		return fmt.Errorf("%w: metrics.interval %v: must be positive", errInvalidConfig, m.Interval)
	}
	return nil
}

// processMetrics is the process's meter provider with its readers, and the
// session metrics recorded into it.
type processMetrics struct {
	// registry is what /metrics serves: the OTel instruments beside the Go
	// runtime and process collectors.
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	sessions *sessionmetrics.Recorder
}

// newMetrics builds the meter provider the consumer and the session metrics
// record into, read by the Prometheus registry and, when metrics.otlp is on,
// pushed over OTLP every metrics.interval (and once more at shutdown).
//
// The periodic reader has no caller to return an export error to, so it
// reports to OTel's global error handler, which newMetrics points at log:
// one line per failed push, at most one per metrics.interval.
func newMetrics(ctx context.Context, cfg config, res *resource.Resource, log *slog.Logger) (*processMetrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(prom), sdkmetric.WithResource(res)}
	if cfg.Metrics.OTLP {
		exp, err := cfg.OTLP.newMetricExporter(ctx)
		if err != nil {
			return nil, err
		}
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "error", err) }))
		guarded := &metricsUnimplementedGuard{Exporter: exp, endpoint: cfg.OTLP.Endpoint, log: log}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(guarded, sdkmetric.WithInterval(cfg.Metrics.Interval))))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	rec, err := sessionmetrics.New(mp, cfg.Metrics.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	return &processMetrics{registry: reg, provider: mp, sessions: rec}, nil
}

// metricsUnimplementedGuard stops pushing metrics to an endpoint that does
// not serve the OTLP metrics service (a traces-only collector answers
// Unimplemented): it says so in one line, once, and then drops every export
// instead of logging a failure every metrics.interval.
type metricsUnimplementedGuard struct {
	sdkmetric.Exporter
	endpoint string
	log      *slog.Logger
	off      atomic.Bool
}

// Export implements sdkmetric.Exporter.
func (g *metricsUnimplementedGuard) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if g.off.Load() {
		return nil
	}
	err := g.Exporter.Export(ctx, rm)
	if err == nil || status.Code(err) != codes.Unimplemented {
		return err
	}
	if g.off.CompareAndSwap(false, true) {
		attrs := []any{"hint", "set metrics.otlp to false to not try; /metrics is not affected"}
		if g.endpoint != "" {
			attrs = append([]any{"endpoint", g.endpoint}, attrs...)
		}
		g.log.Warn("the OTLP endpoint does not accept metrics (Unimplemented): metrics are no longer pushed over OTLP", attrs...)
	}
	return nil
}

// shutdown pushes the last OTLP export and stops the readers.
func (m *processMetrics) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := m.provider.Shutdown(ctx); err != nil {
		log.Warn("meter provider shutdown", "error", err)
	}
}

// newMetricExporter builds an OTLP/gRPC metric exporter with the span
// exporter's settings. Settings left empty fall to the exporter, which reads
// the OTEL_EXPORTER_OTLP_* (and _METRICS_*) variables itself.
func (o otlpConfig) newMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithTimeout(o.Timeout)}
	if o.Endpoint != "" {
		opts = append(opts, otlpmetricgrpc.WithEndpoint(o.Endpoint))
	}
	if o.Insecure {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	}
	tc, headers, err := o.credentials()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(tc)))
	}
	if o.Compression != "" {
		opts = append(opts, otlpmetricgrpc.WithCompressor(o.Compression))
	}
	if headers != nil {
		opts = append(opts, otlpmetricgrpc.WithHeaders(headers))
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	return exp, nil
}

// credentials returns the TLS configuration (nil: the exporter's default)
// and the headers (nil: the exporter reads OTEL_EXPORTER_OTLP_HEADERS) that
// otlp.tls.* and otlp.headers_file ask for.
func (o otlpConfig) credentials() (*tls.Config, map[string]string, error) {
	var tc *tls.Config
	if o.TLS.Enabled {
		var err error
		if tc, err = o.TLS.build("otlp.tls"); err != nil {
			return nil, nil, err
		}
	}
	if o.HeadersFile == "" {
		return tc, nil, nil
	}
	h, err := readHeaders(o.HeadersFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: otlp.headers_file: %w", errInvalidConfig, err)
	}
	// WithHeaders replaces what the exporter read from the environment, so
	// the environment's headers are merged in first.
	merged, err := envHeaders()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	for k, v := range h {
		merged[k] = v
	}
	return tc, merged, nil
}

// metricsSink records the session metrics of the spans a replay finishes
// before handing them on.
type metricsSink struct {
	consumer.Sink
	rec *sessionmetrics.Recorder
}

func (s metricsSink) Write(ctx context.Context, spans []lifecycle.Span) error {
	s.rec.Record(ctx, spans)
	return s.Sink.Write(ctx, spans)
}
