package consumer

import (
	"errors"
	"testing"
	"time"

	"github.com/sessiontrace/sessiontrace/lifecycle"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Brokers = []string{"127.0.0.1:9092"}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   error
	}{
		{"defaults with brokers", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, ErrNoBrokers},
		{"no topic", func(c *Config) { c.Topic = "" }, ErrNoTopic},
		{"no group", func(c *Config) { c.Group = "" }, ErrNoGroup},
		{"dlq is the source", func(c *Config) { c.DLQTopic = c.Topic }, ErrDLQIsSource},
		{"unknown protocol", func(c *Config) { c.GroupProtocol = "eager" }, ErrBadProtocol},
		{"consumer protocol", func(c *Config) { c.GroupProtocol = ProtocolConsumer }, nil},
		{"unknown start", func(c *Config) { c.StartOffset = "middle" }, ErrBadStart},
		{"zero commit interval", func(c *Config) { c.CommitInterval = 0 }, ErrBadDuration},
		{"negative retry", func(c *Config) { c.RetryMax = -time.Second }, ErrBadDuration},
		{"zero queue", func(c *Config) { c.ExportQueueSize = 0 }, ErrBadSize},
		{"batch above queue", func(c *Config) { c.ExportBatchSize = c.ExportQueueSize + 1 }, ErrBatchTooLarge},
		{"sdk export path", func(c *Config) { c.ExportPath = ExportSDK }, nil},
		{"unknown export path", func(c *Config) { c.ExportPath = "otlphttp" }, ErrBadExportPath},
		{"empty export path", func(c *Config) { c.ExportPath = "" }, ErrBadExportPath},
		{"skew bounds disabled", func(c *Config) { c.MaxFutureSkew, c.MaxPastSkew = 0, 0 }, nil},
		{"negative future skew", func(c *Config) { c.MaxFutureSkew = -time.Second }, ErrNegative},
		{"negative past skew", func(c *Config) { c.MaxPastSkew = -time.Second }, ErrNegative},
		{"bad lifecycle", func(c *Config) { c.Lifecycle.IdleTimeout = 0 }, lifecycle.ErrIdleTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			cfg.Brokers = append([]string(nil), valid.Brokers...)
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}
