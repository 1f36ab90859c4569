package lifecycle

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []error
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "dedup disabled", mod: func(c *Config) { c.DedupWindow = 0 }},
		{name: "zero idle", mod: func(c *Config) { c.IdleTimeout = 0 }, want: []error{ErrIdleTimeout}},
		{name: "negative max", mod: func(c *Config) { c.MaxDuration = -time.Second }, want: []error{ErrMaxDuration}},
		{name: "negative window", mod: func(c *Config) { c.DedupWindow = -1 }, want: []error{ErrDedupWindow}},
		{
			name: "all wrong",
			mod:  func(c *Config) { *c = Config{DedupWindow: -5} },
			want: []error{ErrIdleTimeout, ErrMaxDuration, ErrDedupWindow},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(cfg); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Validate() = %v, want it to wrap %v", err, w)
				}
			}
			if _, err := New(cfg); !errors.Is(err, tt.want[0]) {
				t.Errorf("New() = %v, want it to wrap %v", err, tt.want[0])
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	got := DefaultConfig()
	want := Config{IdleTimeout: time.Hour, MaxDuration: 24 * time.Hour, DedupWindow: 65536}
	if got != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", got, want)
	}
}
