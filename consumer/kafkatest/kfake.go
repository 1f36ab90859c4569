package kafkatest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startKfake starts a one-broker in-process cluster for this test alone.
// It speaks the classic group protocol (JoinGroup/SyncGroup) that kgo uses
// unless told otherwise, and keeps offset commit metadata.
func startKfake(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kafkatest: start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}
