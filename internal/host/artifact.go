package host

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/internal/oci"
)

// loadActor reads the module an actor reference names: pulled from an OCI
// registry (through the digest cache) or read from a file.
func (h *Host) loadActor(ctx context.Context, ref string) ([]byte, error) {
	if h.opts.OCI != nil && oci.IsReference(ref) {
		a, err := h.opts.OCI.Pull(ctx, ref, oci.Actor)
		if err != nil {
			return nil, err
		}
		if len(a.Data) > MaxModuleBytes {
			return nil, errors.New("actor module from " + ref + " is larger than the limit")
		}
		return a.Data, nil
	}
	return loadModule(ref, h.opts.AllowFileLoad)
}

// ctlRegistriesPut keeps the registry credentials of a registries.put
// ({"<registry>": {"registryType": "oci", "username", "password", "token"}})
// for later pulls. They live in memory only.
func (h *Host) ctlRegistriesPut(_ context.Context, m *nats.Msg) any {
	var creds map[string]oci.Credential
	if err := decodeCtl(m, &creds); err != nil {
		return ack(err)
	}
	if h.opts.OCI == nil {
		return ack(errors.New("this host pulls no OCI artifacts"))
	}
	n := h.opts.OCI.PutCredentials(creds)
	h.log.Info("registry credentials updated", "registries", n)
	return ack(nil)
}
