package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseHeaders(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"pairs, comments and blanks", "# API key\nX-Api-Key = s3cret\n\nDataset=games=eu\n", map[string]string{"x-api-key": "s3cret", "dataset": "games=eu"}, ""},
		{"empty file", "", map[string]string{}, ""},
		{"no equals sign", "x-api-key s3cret\n", nil, "h:1: want name=value"},
		{"empty name", "=value\n", nil, "h:1: want name=value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseHeaders(strings.NewReader(c.in), "h")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestEnvHeaders(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=general,tenant=a%20b")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=traces")
	want := map[string]string{"api-key": "traces", "tenant": "a b"}
	if got := envHeaders(); !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
