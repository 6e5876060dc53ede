package jswrite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/internal/testing/testenv"
)

func TestRetryable(t *testing.T) {
	api := func(code jetstream.ErrorCode, status int) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: status, ErrorCode: code, Description: "x"})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders", nats.ErrNoResponders, true},
		{"no response from stream", jetstream.ErrNoStreamResponse, true},
		{"wrapped no response from stream", fmt.Errorf("write: %w", jetstream.ErrNoStreamResponse), true},
		{"ack deadline", context.DeadlineExceeded, true},
		{"nats timeout", nats.ErrTimeout, true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"cluster temporarily unavailable", api(errCodeClusterNotAvailable, 503), true},
		{"cluster not leader", api(errCodeClusterNotLeader, 500), true},
		{"caller cancelled", context.Canceled, false},
		{"jetstream not enabled", jetstream.ErrJetStreamNotEnabled, false},
		{"message too large", api(jetstream.JSErrCodeStreamMessageExceedsMaximum, 400), false},
		{"wrong last sequence", api(jetstream.JSErrCodeStreamWrongLastSequence, 400), false},
		{"closed connection", nats.ErrConnectionClosed, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, testenv.NATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A write sent while no stream answers its subject (what clients see while
// a stream's leader is being elected) is retried until a stream answers,
// and is stored once.
func TestPublishWaitsForAStreamToAnswer(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	type result struct {
		ack      *jetstream.PubAck
		attempts int
		err      error
	}
	done := make(chan result, 1)
	go func() {
		ack, n, err := Publish(ctx, js, "wait.one", []byte("v"))
		done <- result{ack, n, err}
	}()
	// Let a few attempts fail with no responders first.
	time.Sleep(time.Second)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WAIT", Subjects: []string{"wait.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(WriteTimeout + 10*time.Second):
		t.Fatal("Publish did not return within its own bound")
	}
	if r.err != nil {
		t.Fatalf("Publish after the stream appeared: %v", r.err)
	}
	if r.attempts < 2 {
		t.Errorf("attempts = %d, want more than one (the first had no stream to answer)", r.attempts)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || r.ack.Sequence != 1 || r.ack.Duplicate {
		t.Errorf("stream holds %d messages, ack %+v; want the write stored once", info.State.Msgs, r.ack)
	}
}

// Every attempt of a write carries the same message id, so a repeat of an
// attempt whose ack was lost is a duplicate the stream drops.
func TestPublishRepeatIsDeduplicated(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEDUP", Subjects: []string{"dedup.>"}, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	sub, err := js.Conn().SubscribeSync("dedup.one")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Publish(ctx, js, "dedup.one", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Replay the very message Publish sent, as a retry after a lost ack would.
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := m.Header.Get(jetstream.MsgIDHeader)
	if id == "" {
		t.Fatal("the write carries no Nats-Msg-Id: a retry after a lost ack would store it twice")
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate || ack.Sequence != 1 {
		t.Errorf("repeat of the write: ack %+v, want a duplicate of sequence 1", ack)
	}
}

// With no stream ever answering, Publish gives up when the caller's
// deadline ends, with the last error and a hint, not at its first failure
// and not much later than the deadline.
func TestPublishGivesUpAtTheDeadline(t *testing.T) {
	js := newJS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, attempts, err := Publish(ctx, js, "nowhere.one", []byte("v"))
	took := time.Since(start)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || !strings.Contains(err.Error(), "still failing after") {
		t.Fatalf("err = %v, want no response from stream with the attempts and a hint", err)
	}
	if attempts < 2 {
		t.Errorf("attempts = %d, want retries within the deadline", attempts)
	}
	if took < 900*time.Millisecond || took > 6*time.Second {
		t.Errorf("gave up after %s, want about the 1 s deadline", took)
	}
}

// An error that retrying cannot fix is returned after one attempt.
func TestPublishReturnsOtherErrorsAtOnce(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 16}); err != nil {
		t.Fatal(err)
	}
	_, attempts, err := Publish(ctx, js, "small.one", []byte(strings.Repeat("x", 100)))
	if err == nil || attempts != 1 {
		t.Fatalf("oversized write: attempts %d, err %v; want one attempt and the stream's refusal", attempts, err)
	}
}
