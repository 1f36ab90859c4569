package kafkatest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BrokersEnv names the environment variable holding the external brokers:
// comma-separated host:port pairs.
const BrokersEnv = "SESSIONTRACE_TEST_BROKERS"

// pingTimeout bounds the check that an external broker answers. A loaded
// 2-core machine answers a local ApiVersions request in milliseconds.
const pingTimeout = 10 * time.Second

func startExternal(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for b := range strings.SplitSeq(os.Getenv(BrokersEnv), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		skip(t, BrokersEnv+" not set; .ci/kafka start runs a broker")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafkatest: client for %s=%s: %v", BrokersEnv, strings.Join(brokers, ","), err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), pingTimeout)
	defer cancel()
	// A broker that was named but does not answer is a broken CI setup, not
	// a reason to skip.
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("kafkatest: %s=%s does not answer: %v", BrokersEnv, strings.Join(brokers, ","), err)
	}
	return brokers
}
