package consumer

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sessiontrace/sessiontrace/consumer/export"
	"github.com/sessiontrace/sessiontrace/lifecycle"
)

// observer turns what a partition's lane reports into the consumer's
// metrics and rate-limited logs.
func (p *pipeline) observer(topic string, partition int32, attrs metric.MeasurementOption) export.Observer {
	partialAttrs := metric.WithAttributes(attribute.String("topic", topic), attribute.Int("partition", int(partition)), attribute.String("reason", "partial_success"))
	refusedAttrs := metric.WithAttributes(attribute.String("topic", topic), attribute.Int("partition", int(partition)), attribute.String("reason", "export_rejected"))
	return export.Observer{
		Result: func(n int, class export.Class, err error) {
			if class == export.RejectedConfig {
				msg := err.Error()
				p.exportRefused.Store(&msg)
			} else if class == export.Accepted || class == export.PartialSuccess {
				p.exportRefused.Store(nil)
			}
			switch class {
			case export.Accepted:
				p.metrics.spans.Add(context.Background(), int64(n), attrs)
				return
			case export.PartialSuccess:
				var ps *export.PartialSuccessError
				if errors.As(err, &ps) {
					p.metrics.spans.Add(context.Background(), max(int64(n)-ps.Rejected, 0), attrs)
				}
				return
			}
			p.failedExports.Add(1)
			p.metrics.exportFailed.Add(context.Background(), int64(n), attrs)
			switch class {
			case export.RejectedConfig:
				// Only an operator can fix it, and nothing is dropped
				// meanwhile: loud, but one line per interval.
				p.exportLog.at(slog.LevelError, "export/"+class.String(), "the OTLP endpoint refuses our exports as configured (credentials, permissions, endpoint, headers); retrying until it accepts them",
					"topic", topic, "partition", partition, "spans", n, "class", class.String(), "error", err)
			case export.RejectedData:
				p.exportLog.warn("export/"+class.String(), "the OTLP endpoint refused a batch for its content; splitting it to isolate the refused spans",
					"topic", topic, "partition", partition, "spans", n, "class", class.String(), "error", err)
			default:
				p.exportLog.warn("export", "span export failed; retrying until the endpoint accepts it",
					"topic", topic, "partition", partition, "spans", n, "class", class.String(), "error", err)
			}
		},
		Partial: func(rejected int64, msg string) {
			if rejected == 0 { // OTLP's way of sending a warning
				p.exportLog.info("export/partial_success_warning", "the OTLP endpoint accepted a request with a warning",
					"topic", topic, "partition", partition, "message", msg)
				return
			}
			p.metrics.spansRejected.Add(context.Background(), rejected, partialAttrs)
			p.exportLog.warn("export/partial_success", "the OTLP endpoint accepted a request but rejected some of its spans; they are not sent again",
				"topic", topic, "partition", partition, "rejected", rejected, "message", msg)
		},
		Rejected: func(seq int64, s *lifecycle.Span, msg string) {
			p.metrics.spansRejected.Add(context.Background(), 1, refusedAttrs)
			p.exportLog.warn("export/rejected", "the OTLP endpoint refuses a span for good; it is acknowledged without being exported",
				"topic", topic, "partition", partition, "seq", seq, "span", s.Name, "trace_id", s.TraceID.String(), "span_id", s.SpanID.String(), "message", msg)
		},
	}
}
