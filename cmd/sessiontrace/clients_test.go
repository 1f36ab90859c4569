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
		{"space in the name", "# key\nbad key=s3cret\n", nil, `h:2: header "bad key": a name may only hold`},
		{"name gRPC reserves", "grpc-timeout=s3cret\n", nil, `h:1: header "grpc-timeout": the name is reserved`},
		{"HTTP/2 header gRPC sets", "Content-Type=s3cret\n", nil, `h:1: header "content-type": the name is reserved`},
		{"value not printable ASCII", "x-api-key=s3cret\u00e9\n", nil, `h:1: header "x-api-key": the value holds`},
		{"binary header takes any value", "x-token-bin=s3cret\u00e9\n", map[string]string{"x-token-bin": "s3cret\u00e9"}, ""},
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
	got, err := envHeaders()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestEnvHeadersRefusesWhatGRPCRefuses checks that a header gRPC would
// refuse to send is an error naming the variable and the key, never the
// value.
func TestEnvHeadersRefusesWhatGRPCRefuses(t *testing.T) {
	for _, c := range []struct{ env, value, want string }{
		{"OTEL_EXPORTER_OTLP_HEADERS", "ok=1,bad key=s3cret", `OTEL_EXPORTER_OTLP_HEADERS: header "bad key"`},
		{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "grpc-status=s3cret", `OTEL_EXPORTER_OTLP_TRACES_HEADERS: header "grpc-status"`},
		{"OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret%0A", `header "x-api-key": the value`},
		{"OTEL_EXPORTER_OTLP_HEADERS", "s3cret", "want name=value"},
	} {
		t.Run(c.value, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			_, err := envHeaders()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the value: %v", err)
			}
		})
	}
}
