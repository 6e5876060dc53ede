// Package jswrite stores messages in JetStream streams so that a write rides
// out a stream or meta leader election instead of failing at its first
// "no response from stream" (docs/operations.md, "JetStream leader elections").
//
// A write is retried only on errors that mean "nobody stored it yet, ask
// again": no responders, a publish ack that did not come, or the server
// saying the JetStream cluster is temporarily unavailable. Every attempt of
// one write carries the same Nats-Msg-Id, so the stream's duplicate window
// stores it once even when an attempt's ack was lost after it was stored.
package jswrite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// WriteTimeout bounds a write whose caller gave no earlier deadline. A
// nats-server whose stream leader died waits 4–9 s (its raft election
// timeout) before electing another; 15 s covers that with room to spare.
const WriteTimeout = 15 * time.Second

// attemptTimeout bounds one publish attempt. A leader killed after it got
// the message never acks, so without this bound one attempt would eat the
// whole deadline; a healthy stream acks in milliseconds.
const attemptTimeout = 2 * time.Second

// Backoff between attempts: it starts short (an election often ends within
// a second of a graceful step-down) and grows to at most maxBackoff, with
// jitter so that the hosts of a lattice do not retry in step.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Those JetStream API error codes (nats-server's JSClusterNotAvailErr and
// JSClusterNotLeaderErr) mean the cluster is between leaders.
const (
	errCodeClusterNotAvailable jetstream.ErrorCode = 10008
	errCodeClusterNotLeader    jetstream.ErrorCode = 10009
)

// Publish stores data on subject and returns the stream's ack, retrying
// through a leader election until the write is stored or ctx ends (and at
// most WriteTimeout). attempts reports how many publishes it took.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, data []byte) (ack *jetstream.PubAck, attempts int, err error) {
	return PublishMsg(ctx, js, &nats.Msg{Subject: subject, Data: data})
}

// PublishMsg is Publish for a message with headers (a key-value purge) and
// publish options (an expected last sequence); an expectation the stream
// refuses is returned at once, not retried.
func PublishMsg(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, opts ...jetstream.PublishOpt) (ack *jetstream.PubAck, attempts int, err error) {
	ctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	// One id for every attempt of this write: the stream drops a repeat
	// within its duplicate window, so a retry after a lost ack stores nothing.
	id := nuid.Next()
	backoff := minBackoff
	for {
		attempts++
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		// Retries are ours (with backoff and the caller's deadline), not the
		// client library's two fixed ones.
		ack, err = js.PublishMsg(actx, msg, append([]jetstream.PublishOpt{jetstream.WithMsgID(id), jetstream.WithRetryAttempts(0)}, opts...)...)
		acancel()
		if err == nil {
			return ack, attempts, nil
		}
		if !Retryable(err) {
			return nil, attempts, err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, attempts, gaveUp(err, attempts)
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func gaveUp(err error, attempts int) error {
	return fmt.Errorf("%w (still failing after %d attempts within the deadline: check that the stream has a leader, e.g. `nats stream info`)", err, attempts)
}

// Retryable reports whether err from a JetStream publish means the message
// was probably not stored because the stream had no leader to answer, so the
// same write may be sent again.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true // nobody listens on the stream's subjects right now
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return true // the ack did not come: a dead leader, or one being elected
	case errors.Is(err, nats.ErrConnectionReconnecting):
		return true // the client is moving to another server
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeClusterNotAvailable || apiErr.ErrorCode == errCodeClusterNotLeader
	}
	return false
}
