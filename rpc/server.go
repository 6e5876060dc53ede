package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// Defaults of the receive pipeline, one set for the host and providers
// (internal/config resolves the node's settings from them).
const (
	// DefaultTimeout bounds an invocation: the caller's wait, and the
	// callee's work (Server.Timeout).
	DefaultTimeout = 2 * time.Second
	// DefaultMaxPayloadBytes is the largest invocation a callee accepts
	// (Server.MaxPayloadBytes): NATS's own default max_payload.
	DefaultMaxPayloadBytes = 1 << 20
	// DefaultReplayWindow is how long the replay guard behind
	// Server.Issuers remembers invocation ids; older tokens are refused.
	DefaultReplayWindow = time.Minute
	// DefaultClockSkew is how far the clocks of two nodes may disagree
	// before Server.Issuers refuses a token as not yet or no longer valid.
	DefaultClockSkew = 30 * time.Second
)

// Server is the receive half of one callee (an actor on a host, or a
// provider instance): it takes the invocations its subscription delivers
// through the checks of docs/protocol.md §3, in order — size, decode,
// anti-forgery token and issuer (with the replay guard), the callee's own
// authorisation — then hands the survivors to Handle inside a server span
// and sends the reply. A refused invocation never reaches Handle: it is
// answered with its reason, coded in the reply's lattice.HeaderErrorCode.
//
// Set the fields before the first Serve and leave them alone afterwards;
// Serve is safe for concurrent use.
type Server struct {
	// Key is the callee's public key: an invocation addressed to anything
	// else is refused (lattice.ReasonWrongTarget).
	Key string
	// Issuers verifies each invocation's token (required).
	Issuers *trust.Issuers
	// MaxPayloadBytes refuses bigger invocations before decoding them
	// (lattice.ReasonTooLarge); 0 means DefaultMaxPayloadBytes.
	MaxPayloadBytes int
	// Timeout bounds Authorize, and separately Handle; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Authorize, when set, is the callee's own admission check after the
	// issuer check (the host: capability claims and the policy service; a
	// provider: the caller is linked). An error refuses the invocation
	// with the error's text; return a *lattice.RejectError to give it a
	// reason.
	Authorize func(ctx context.Context, inv *lattice.Invocation) error
	// Handle serves an admitted invocation (required). Its error becomes
	// the reply's error text, coded by its reason or the sentinel it
	// matches (see Mark).
	Handle func(ctx context.Context, inv *lattice.Invocation) (Result, error)
	// Observer is told of each refusal and each served invocation; nil
	// means nobody is.
	Observer Observer
	// Log receives reply failures; nil means slog.Default().
	Log *slog.Logger
}

// Result is what Handle produced.
type Result struct {
	Msg        []byte
	InstanceID string // the instance that served the call (the reply's instance_id), if any
	// Done, when set, runs once the reply is sent: the host returns the
	// actor instance to its pool there, since replacing a broken one takes
	// as long as the actor's initialiser and the caller should not wait.
	Done func()
}

// Observer is how a Server's owner counts and reports what it does: rpc
// records no metrics of its own, so that the provider SDK stays free of a
// metrics library.
type Observer interface {
	// Rejected is called after a refusal is answered. inv is nil when the
	// bytes were too large or did not decode; lattice.ReasonOf(err) is the
	// reason ("" for an Authorize error that is not a rejection).
	Rejected(inv *lattice.Invocation, err error)
	// Served is called after Handle's reply is sent, with Handle's error and
	// the time since the invocation arrived.
	Served(inv *lattice.Invocation, err error, elapsed time.Duration)
}

// Serve receives one invocation and answers it. It blocks until the reply
// is sent and Result.Done has run; callers that must serve concurrently
// call it on a goroutine of their own.
func (s *Server) Serve(m *nats.Msg) {
	start := time.Now()
	if limit := s.maxPayload(); len(m.Data) > limit {
		s.reject(m, nil, lattice.Reject(lattice.ReasonTooLarge, "invocation of %d bytes exceeds the %d byte limit (LATTICED_MAX_PAYLOAD_BYTES)", len(m.Data), limit))
		return
	}
	inv, err := lattice.DecodeInvocation(m.Data)
	if err != nil {
		s.reject(m, nil, lattice.Reject(lattice.ReasonMalformed, "%v", err))
		return
	}
	if _, err := s.Issuers.Check(inv, s.Key); err != nil {
		s.reject(m, inv, err)
		return
	}
	if s.Authorize != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
		err := s.Authorize(ctx, inv)
		cancel()
		if err != nil {
			s.reject(m, inv, err)
			return
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	defer cancel()
	ctx, span := startServerSpan(ctx, inv, s.Key)
	res, err := s.Handle(ctx, inv)
	resp := &lattice.InvocationResponse{InvocationID: inv.ID, InstanceID: res.InstanceID}
	if err != nil {
		resp.Error, resp.ErrorCode = err.Error(), codeOf(err)
	} else {
		resp.Msg, resp.ContentLength = res.Msg, uint64(len(res.Msg))
	}
	span.end(resp)
	s.Reply(m, resp)
	if s.Observer != nil {
		s.Observer.Served(inv, err, time.Since(start))
	}
	if res.Done != nil {
		res.Done()
	}
}

// reject answers a refused invocation with its reason.
func (s *Server) reject(m *nats.Msg, inv *lattice.Invocation, err error) {
	resp := &lattice.InvocationResponse{Error: err.Error(), ErrorCode: codeOf(err)}
	if inv != nil {
		resp.InvocationID = inv.ID
	}
	s.Reply(m, resp)
	if s.Observer != nil {
		s.Observer.Rejected(inv, err)
	}
}

// Reply sends resp as the reply to m, logging a failure: for answers the
// owner gives without Serve (it is stopping, or has no room).
func (s *Server) Reply(m *nats.Msg, resp *lattice.InvocationResponse) {
	if err := respond(m, resp); err != nil {
		log := s.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("send invocation response failed", "err", err)
	}
}

func (s *Server) maxPayload() int {
	if s.MaxPayloadBytes > 0 {
		return s.MaxPayloadBytes
	}
	return DefaultMaxPayloadBytes
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// respond sends resp as the reply to m, with resp.ErrorCode in the
// lattice.HeaderErrorCode header when it has one. A reply too large for NATS
// is replaced by an error reply saying so, so the caller is never left to
// time out.
func respond(m *nats.Msg, resp *lattice.InvocationResponse) error {
	if m.Reply == "" {
		return nil
	}
	b, err := resp.Encode()
	switch {
	case err != nil:
	case resp.ErrorCode != "": // only coded errors carry a header; replies stay as they were
		err = m.RespondMsg(&nats.Msg{Data: b, Header: nats.Header{lattice.HeaderErrorCode: []string{resp.ErrorCode}}})
	default:
		err = m.Respond(b)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		tooBig := &lattice.InvocationResponse{InvocationID: resp.InvocationID,
			Error: fmt.Sprintf("response of %d bytes exceeds the NATS max payload", len(resp.Msg))}
		if b, err = tooBig.Encode(); err == nil {
			err = m.Respond(b)
		}
	}
	return err
}
