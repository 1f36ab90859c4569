// Package kafkacheck asks the brokers, before a command starts its real work,
// whether they accept the client and know its topic, so that a wrong
// password, a missing ACL or a mistyped topic fails in seconds with the
// broker's own error instead of a produce or fetch that retries until it is
// cancelled.
//
// franz-go retries what may be transient, and a rejected SASL login looks
// transient from inside the client: the broker closes the connection (kfake
// does so without a reason, Apache Kafka after answering
// SASL_AUTHENTICATION_FAILED), and produce and fetch requests wait for a
// connection that never comes. A Checker therefore watches the SASL
// exchange through a client hook and names it when the first request fails.
package kafkacheck

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
)

// DefaultTimeout bounds Checker.Topic unless Checker.Timeout says
// otherwise: long enough for a loaded broker's first metadata answer, short
// enough that a command that cannot work says so in seconds.
const DefaultTimeout = 10 * time.Second

// saslAuthenticateKey is the Kafka API key of SaslAuthenticate.
const saslAuthenticateKey = 36

// Checker remembers what the client's connections saw during SASL
// authentication. Register it on the client with kgo.WithHooks(checker);
// the zero value is ready to use, and it is safe for concurrent use.
type Checker struct {
	// Timeout bounds Topic; zero means DefaultTimeout.
	Timeout time.Duration

	saslBroken atomic.Bool // a connection broke during SASL authentication
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// OnBrokerRead implements kgo.HookBrokerRead: a read that fails during
// SaslAuthenticate is a login the broker refused.
func (c *Checker) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == saslAuthenticateKey && err != nil {
		c.saslBroken.Store(true)
	}
}

// Topic checks, within the Timeout, that a broker answers cl with its
// credentials and that topic exists and may be described. With create, a
// missing topic is asked for as a producer asks for it (the broker creates
// it when auto.create.topics.enable is on). The error names the cause:
// authentication, authorization, an unknown topic, or no answer.
func (c *Checker) Topic(ctx context.Context, cl *kgo.Client, topic string, create bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return c.explain(ctx, cl, err)
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = create
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return c.explain(ctx, cl, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kerr.UnknownTopicOrPartition) && create:
			return fmt.Errorf("topic %q does not exist and the brokers did not create it (auto.create.topics.enable is off?): %w", topic, err)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("topic %q does not exist: %w", topic, err)
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			return fmt.Errorf("not authorized to use topic %q%s: %w", topic, asUser(cl), err)
		case kerr.IsRetriable(err):
			// A topic being created, or a leader moving: the real
			// requests wait for it.
			return nil
		default:
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	return fmt.Errorf("topic %q: the brokers' metadata does not mention it", topic)
}

// explain words an error of the first requests.
func (c *Checker) explain(ctx context.Context, cl *kgo.Client, err error) error {
	mech := mechanism(cl)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("SASL authentication (%s) failed: %w", mech, err)
	case c.saslBroken.Load():
		return fmt.Errorf("SASL authentication (%s) failed: the broker closed the connection during it (wrong user name, password or mechanism?): %w", mech, err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("not authorized%s: %w", asUser(cl), err)
	case ctx.Err() != nil:
		return fmt.Errorf("no broker of %v answered within %s: %w", cl.OptValue(kgo.SeedBrokers), c.timeout(), err)
	default:
		return fmt.Errorf("brokers %v: %w", cl.OptValue(kgo.SeedBrokers), err)
	}
}

// mechanism names the client's SASL mechanism, or "none".
func mechanism(cl *kgo.Client) string {
	if ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(ms) > 0 {
		return ms[0].Name()
	}
	return "none"
}

func asUser(cl *kgo.Client) string {
	if m := mechanism(cl); m != "none" {
		return " with SASL " + m
	}
	return ""
}
