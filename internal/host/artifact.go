package host

import (
	"context"
	"errors"
	"fmt"

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
// for later pulls, and saves them in the data dir so that they outlive a
// restart (docs/operations.md, "Artifacts"). The host is the one process of
// a node that saves them; the supervisor only reads them.
func (h *Host) ctlRegistriesPut(_ context.Context, m *nats.Msg) any {
	var creds map[string]oci.Credential
	if err := decodeCtl(m, &creds); err != nil {
		return ack(err)
	}
	if h.opts.OCI == nil {
		return ack(errors.New("this host pulls no OCI artifacts"))
	}
	n := h.opts.OCI.PutCredentials(creds)
	if err := h.opts.OCI.SaveCredentials(); err != nil {
		h.log.Error("registry credentials in use but not saved", "registries", n, "err", err)
		return ack(fmt.Errorf("registry credentials are in use but not saved, so a restart loses them: %w", err))
	}
	h.log.Info("registry credentials updated", "registries", h.opts.OCI.Registries(), "applied", n)
	return ack(nil)
}
