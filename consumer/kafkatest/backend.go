// Package kafkatest is the one broker harness behind every Kafka test: the
// same test runs against an external broker named by an environment variable
// (CI starts a real Apache Kafka), a testcontainers Kafka where a Docker
// engine answers, and franz-go's in-process kfake cluster, with helpers for
// unique topics and groups, producing, and reading committed offsets.
//
// A suite runs against every backend with Each:
//
//	func TestConsume(t *testing.T) {
//		kafkatest.Each(t, func(t *testing.T, brokers []string) {
//			topic := kafkatest.Topic(t, brokers, 3)
//			...
//		})
//	}
//
// A backend that is unavailable skips its subtest with the reason. Every
// test binary that uses the package calls Main from TestMain, which
// terminates the binary's shared testcontainers broker and prints one line
// saying what ran on which backend:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// The testcontainers backend runs DefaultImage, or the image named by
// ImageEnv.
package kafkatest

import "testing"

// Backend is one kind of broker a test can run against.
type Backend struct {
	// Name is "external", "testcontainers" or "kfake"; Each uses it as the
	// subtest name.
	Name  string
	start func(t testing.TB) []string
}

// Backend names.
const (
	External       = "external"
	Testcontainers = "testcontainers"
	Kfake          = "kfake"
)

// Backends returns every backend, the real brokers first.
func Backends() []Backend {
	return []Backend{
		{Name: External, start: startExternal},
		{Name: Testcontainers, start: startContainer},
		{Name: Kfake, start: startKfake},
	}
}

// Start returns the seed brokers of the backend for this test, and skips t
// with the reason when the backend is not available here. Anything it starts
// for the test alone is stopped in t.Cleanup.
func (b Backend) Start(t testing.TB) []string {
	t.Helper()
	if b.start == nil {
		t.Fatalf("kafkatest: backend %q is not one of Backends()", b.Name)
	}
	return b.start(t)
}

// Each runs fn as a subtest per backend, named after it, so that a suite
// runs against all three kinds of broker.
func Each(t *testing.T, fn func(t *testing.T, brokers []string)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Cleanup(func() { tally.record(b.Name, t) })
			fn(t, b.Start(t))
		})
	}
}
