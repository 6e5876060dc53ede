package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/latticed/latticed/lattice"
)

// Large payloads (docs/protocol.md §3, "Large payloads") travel as wasmCloud
// 0.53+ moves them: the sender puts the payload in the lattice's JetStream
// object store (lattice.ChunkBucket), under the invocation id (a response
// under lattice.ChunkResponseObject), and sends the message with msg empty
// and content_length the full length. The receiver fetches the object,
// then deletes it; the sender never does. The store is found from the
// lattice prefix in the RPC subject, so neither Invoke nor Server needs to
// be handed one.
const (
	// ChunkThreshold is the largest payload sent inline; longer ones go
	// through the object store. 900 KiB is wasmbus-rpc's (≥ 0.11) threshold
	// for invocations and responses and the OTP host's for responses; the
	// OTP host chunks its own invocations from 700 KiB, which latticed reads
	// the same way.
	ChunkThreshold = 900 << 10
	// ChunkMaxAge is how long the object store keeps an object nobody
	// fetched (the callee refused the call, or the caller gave up), when
	// latticed created the bucket. A bucket another host made keeps its own
	// settings (wasmCloud's: no limit).
	ChunkMaxAge = 10 * time.Minute
	// ChunkTimeout bounds putting or fetching one chunked payload when the
	// context has no earlier deadline: the OTP host's request timeout for
	// chunked invocations.
	ChunkTimeout = 15 * time.Second
)

// errNotRPCSubject: chunking needs the lattice prefix from the subject.
var errNotRPCSubject = errors.New("subject is not a wasmbus.rpc subject, so it names no lattice object store")

// chunked reports whether a message whose msg has n bytes and whose
// content_length is contentLength carries its payload in the object store:
// wasmCloud's rule, content_length above the bytes present.
func chunked(n int, contentLength uint64) bool { return contentLength > uint64(n) }

// chunkStore opens the object store of the lattice subject belongs to. The
// supervisor creates the bucket; when it is missing (a lattice without a
// latticed supervisor) the bucket is created here, with ChunkMaxAge, if the
// connection may, and an existing bucket is used as it is.
func chunkStore(ctx context.Context, nc *nats.Conn, subject string) (jetstream.ObjectStore, error) {
	prefix, ok := lattice.RPCPrefixOf(subject)
	if !ok {
		return nil, fmt.Errorf("open object store for %q: %w", subject, errNotRPCSubject)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open object store of lattice %q: %w", prefix, err)
	}
	return EnsureChunkBucket(ctx, js, prefix)
}

// EnsureChunkBucket opens the object store of lattice prefix, creating it
// with ChunkMaxAge if it does not exist yet (latticed is the first host of
// the lattice). The supervisor calls it at start, so that no role needs the
// right to create streams.
func EnsureChunkBucket(ctx context.Context, js jetstream.JetStream, prefix string) (jetstream.ObjectStore, error) {
	bucket := lattice.ChunkBucket(prefix)
	store, err := js.ObjectStore(ctx, bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		if err != nil {
			return nil, fmt.Errorf("open object store %q: %w", bucket, err)
		}
		return store, nil
	}
	store, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucket,
		Description: "large invocation payloads of lattice " + prefix + " (wasmCloud chunking)",
		TTL:         ChunkMaxAge, // the stream's max age
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another host was quicker
		store, err = js.ObjectStore(ctx, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("object store %q of lattice %q is missing and could not be created (the supervisor creates it at start): %w", bucket, prefix, err)
	}
	return store, nil
}

// putChunked stores payload as object name in the object store of
// subject's lattice.
func putChunked(ctx context.Context, nc *nats.Conn, subject, name string, payload []byte) error {
	ctx, cancel := chunkContext(ctx)
	defer cancel()
	store, err := chunkStore(ctx, nc, subject)
	if err == nil {
		_, err = store.PutBytes(ctx, name, payload)
	}
	if err != nil {
		return fmt.Errorf("writing chunkified for %s: %w", name, err)
	}
	return nil
}

// fetchChunked reads object name of length want from the object store of
// subject's lattice and deletes it: the receiver's part. The object store
// checks the SHA-256 digest over what it reads; a length other than want is
// refused too. A failed delete is not an error (wasmbus-rpc's rule; the
// bucket's max age removes the object).
func fetchChunked(ctx context.Context, nc *nats.Conn, subject, name string, want uint64) ([]byte, error) {
	ctx, cancel := chunkContext(ctx)
	defer cancel()
	store, err := chunkStore(ctx, nc, subject)
	if err != nil {
		return nil, fmt.Errorf("error starting to receive chunked stream for inv %s: %w", name, err)
	}
	b, err := store.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("error receiving chunked stream for inv %s: %w", name, err)
	}
	_ = store.Delete(ctx, name) // best effort: ChunkMaxAge expires what is left
	if uint64(len(b)) != want {
		return nil, fmt.Errorf("chunked payload %s has %d bytes, content_length says %d", name, len(b), want)
	}
	return b, nil
}

// chunkContext bounds one object-store operation by ChunkTimeout unless ctx
// ends sooner.
func chunkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= ChunkTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, ChunkTimeout)
}

// fetchResponse reads the chunked response resp to invocation id, sent on
// subject: stored under the response's own invocation_id (id when it
// names none), at most DefaultMaxPayloadBytes.
func fetchResponse(ctx context.Context, nc *nats.Conn, subject, id string, resp *lattice.InvocationResponse) ([]byte, error) {
	if resp.InvocationID != "" {
		id = resp.InvocationID
	}
	if resp.ContentLength > DefaultMaxPayloadBytes {
		return nil, fmt.Errorf("chunked response of %d bytes exceeds the %d byte limit: %w", resp.ContentLength, DefaultMaxPayloadBytes, ErrTooLarge)
	}
	return fetchChunked(ctx, nc, subject, lattice.ChunkResponseObject(id), resp.ContentLength)
}

// dechunk replaces inv's empty msg by the payload its content_length says
// the object store holds, within the payload limit.
func (s *Server) dechunk(m *nats.Msg, inv *lattice.Invocation) error {
	if limit := s.maxPayload(); inv.ContentLength > uint64(limit) {
		return lattice.Reject(lattice.ReasonTooLarge, "chunked invocation of %d bytes exceeds the %d byte limit (LATTICED_MAX_PAYLOAD_BYTES)", inv.ContentLength, limit)
	}
	if s.Conn == nil {
		return lattice.Reject(lattice.ReasonChunkFetch, "payload of %d bytes was sent through the object store, which this receiver has no connection to", inv.ContentLength)
	}
	// Bounded by ChunkTimeout, not Timeout: wasmCloud gives chunked calls
	// that much extra time, and the handler's deadline starts afterwards.
	b, err := fetchChunked(context.Background(), s.Conn, m.Subject, inv.ID, inv.ContentLength)
	if err != nil {
		return lattice.Reject(lattice.ReasonChunkFetch, "%v", err)
	}
	inv.Msg = b
	return nil
}

// chunkResponse moves resp's msg to the object store, leaving it empty with
// content_length the full length; when that fails resp becomes the error
// saying so (wasmbus-rpc's text), since the payload cannot go inline.
func (s *Server) chunkResponse(ctx context.Context, m *nats.Msg, resp *lattice.InvocationResponse) {
	err := errors.New("no connection to the lattice object store for a chunked response")
	if s.Conn != nil {
		// The handler may have used up ctx; the caller waits on its own
		// deadline anyway.
		err = putChunked(context.WithoutCancel(ctx), s.Conn, m.Subject, lattice.ChunkResponseObject(resp.InvocationID), resp.Msg)
	}
	if err != nil {
		resp.Msg, resp.ContentLength, resp.Error = nil, 0, err.Error()
		return
	}
	resp.Msg = []byte{}
}
