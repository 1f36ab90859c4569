package kafkacheck

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestTopic(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "u", "p"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	auto, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auto.Close)
	// A listener that accepts connections and never answers: a broker that
	// hangs, or a port that is not Kafka's.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan []net.Conn, 1)
	go func() {
		var conns []net.Conn
		for {
			c, err := mute.Accept()
			if err != nil {
				accepted <- conns
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		mute.Close()
		for _, c := range <-accepted {
			c.Close()
		}
	})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	login := func(pass string) kgo.Opt { return kgo.SASL(plain.Auth{User: "u", Pass: pass}.AsMechanism()) }
	tests := []struct {
		name    string
		brokers []string
		opts    []kgo.Opt
		topic   string
		create  bool
		is      error  // errors.Is target, when the broker answered with a code
		want    string // in the message; "" for success
	}{
		{name: "ok", brokers: cluster.ListenAddrs(), opts: []kgo.Opt{login("p")}, topic: "t"},
		{name: "wrong password", brokers: cluster.ListenAddrs(), opts: []kgo.Opt{login("x")}, topic: "t",
			want: "SASL authentication (PLAIN) failed: the broker closed the connection during it"},
		{name: "unknown topic", brokers: cluster.ListenAddrs(), opts: []kgo.Opt{login("p")}, topic: "nope",
			is: kerr.UnknownTopicOrPartition, want: `topic "nope" does not exist`},
		{name: "unknown topic, not created", brokers: cluster.ListenAddrs(), opts: []kgo.Opt{login("p")}, topic: "nope", create: true,
			is: kerr.UnknownTopicOrPartition, want: "did not create it"},
		{name: "created on demand", brokers: auto.ListenAddrs(), topic: "fresh", create: true},
		{name: "nothing listens", brokers: []string{closedAddr}, topic: "t", want: "connection refused"},
		{name: "nothing answers", brokers: []string{mute.Addr().String()}, topic: "t", want: "answered within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Timeout: 300 * time.Millisecond}
			cl, err := kgo.NewClient(append(tt.opts, kgo.SeedBrokers(tt.brokers...), kgo.WithHooks(c))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			start := time.Now()
			err = c.Topic(t.Context(), cl, tt.topic, tt.create)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %s, want the check's bound", el)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Topic: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Topic: %v, want an error saying %q", err, tt.want)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("Topic: %v, want it to wrap %v", err, tt.is)
			}
		})
	}
}
