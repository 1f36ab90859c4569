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

// ImageEnv names the environment variable that chooses the image of the
// testcontainers backend. CI sets it to an image it builds locally from the
// same Kafka jars as its external broker (.ci/kafka-image/build), since it
// can pull from no registry.
const ImageEnv = "SESSIONTRACE_TEST_KAFKA_IMAGE"

// DefaultImage is the image of the testcontainers backend when ImageEnv is
// unset: Confluent's single-node KRaft image, the one testcontainers' Kafka
// module is built around, pulled on first use.
const DefaultImage = "confluentinc/confluent-local:7.5.0"

// containerStartTimeout bounds pulling the image and waiting for the broker.
const containerStartTimeout = 5 * time.Minute

// dockerHealthTimeout bounds the one question whether a Docker engine
// answers.
const dockerHealthTimeout = 10 * time.Second

// container is the broker shared by every test of the binary: starting one
// takes seconds to tens of seconds, so it is started on first use and
// terminated by Main, which every binary using the backend must call from
// TestMain (testcontainers' reaper, where it runs, is only a backstop).
var container struct {
	once    sync.Once
	image   string
	ctr     *kafka.KafkaContainer
	brokers []string
	err     error

	healthOnce sync.Once
	unhealthy  error
}

// containerImage is the image the testcontainers backend runs.
func containerImage() string {
	if img := os.Getenv(ImageEnv); img != "" {
		return img
	}
	return DefaultImage
}

func startContainer(t testing.TB) []string {
	t.Helper()
	container.healthOnce.Do(func() {
		container.unhealthy = dockerHealth()
	})
	if container.unhealthy != nil {
		skip(t, fmt.Sprintf("no Docker engine answers (%v)", container.unhealthy))
	}
	if !inMain.Load() {
		// Without Main the container would outlive the binary wherever the
		// reaper is disabled, as in CI.
		t.Fatalf("kafkatest: the testcontainers backend needs the test binary's TestMain to call kafkatest.Main, which terminates its container")
	}
	container.once.Do(func() {
		container.image = containerImage()
		ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout)
		defer cancel()
		ctr, err := kafka.Run(ctx, container.image)
		// Run may return a container together with an error; keep it so
		// Main still terminates it.
		container.ctr = ctr
		if err != nil {
			container.err = fmt.Errorf("run %s: %w", container.image, err)
			return
		}
		container.brokers, container.err = ctr.Brokers(ctx)
	})
	if container.err != nil {
		t.Fatalf("kafkatest: testcontainers broker: %v", container.err)
	}
	return container.brokers
}

// dockerHealth asks once per test binary whether a Docker engine answers,
// for tests and benchmarks alike.
func dockerHealth() (err error) {
	// The provider panics, rather than failing, on some broken setups.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return err
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dockerHealthTimeout)
	defer cancel()
	return provider.Health(ctx)
}

// terminateContainer stops and removes the shared broker, if one was
// started. It does not wait for a clean shutdown: the broker's data is
// thrown away with it.
func terminateContainer() {
	if container.ctr == nil {
		return
	}
	if err := testcontainers.TerminateContainer(container.ctr, testcontainers.StopTimeout(0)); err != nil {
		// There is no test left to fail; say what happened and carry on
		// (.ci/run removes leftover containers).
		fmt.Fprintf(os.Stderr, "kafkatest: terminate %s container: %v\n", container.image, err)
	}
}
