package kafkatest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/kafka"
)

// ContainerImage is the image of the testcontainers backend: Confluent's
// single-node KRaft image, the one testcontainers' Kafka module is built
// around.
const ContainerImage = "confluentinc/confluent-local:7.5.0"

// containerStartTimeout bounds pulling the image and waiting for the broker.
const containerStartTimeout = 5 * time.Minute

// container is the broker shared by every test of the binary: starting one
// takes tens of seconds, so it is started on first use and terminated by
// Main (or, failing that, by testcontainers' reaper when the binary exits).
var container struct {
	once    sync.Once
	ctr     *kafka.KafkaContainer
	brokers []string
	err     error

	healthOnce sync.Once
	unhealthy  error
}

func startContainer(t testing.TB) []string {
	t.Helper()
	skipWithoutDocker(t)
	container.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout)
		defer cancel()
		ctr, err := kafka.Run(ctx, ContainerImage)
		// Run may return a container together with an error; keep it so
		// Main still terminates it.
		container.ctr = ctr
		if err != nil {
			container.err = fmt.Errorf("run %s: %w", ContainerImage, err)
			return
		}
		container.brokers, container.err = ctr.Brokers(ctx)
	})
	if container.err != nil {
		t.Fatalf("kafkatest: testcontainers broker: %v", container.err)
	}
	return container.brokers
}

// skipWithoutDocker skips t when no Docker engine answers.
func skipWithoutDocker(t testing.TB) {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		testcontainers.SkipIfProviderIsNotHealthy(tt)
		return
	}
	// Benchmarks get the same check; it needs a *testing.T only to skip.
	container.healthOnce.Do(func() {
		container.unhealthy = dockerHealth()
	})
	if container.unhealthy != nil {
		t.Skipf("no Docker engine answers, so no testcontainers broker: %v", container.unhealthy)
	}
}

func dockerHealth() (err error) {
	// The provider panics, rather than failing, on some broken setups.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider panicked: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return err
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return provider.Health(ctx)
}

// Main runs the test binary's tests and then terminates the testcontainers
// broker if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// The binary's exit code is that of m.Run (the testing package exits with it
// when TestMain returns).
func Main(m *testing.M) {
	m.Run()
	if container.ctr == nil {
		return
	}
	if err := testcontainers.TerminateContainer(container.ctr); err != nil {
		// There is no test left to fail; the reaper removes the container
		// when the binary exits, so say what happened and carry on.
		fmt.Fprintf(os.Stderr, "kafkatest: terminate %s container: %v\n", ContainerImage, err)
	}
}
