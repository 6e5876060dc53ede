package lattice

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/latticed/latticed/wire"
)

// LinkDefinition binds an actor to a provider for a contract and link name.
// Its identity is (actor, contract, link name); the provider is not part of it.
type LinkDefinition struct {
	ID         string            `json:"id" msgpack:"id"`
	ActorID    string            `json:"actor_id" msgpack:"actor_id"`
	ProviderID string            `json:"provider_id" msgpack:"provider_id"`
	LinkName   string            `json:"link_name" msgpack:"link_name"`
	ContractID string            `json:"contract_id" msgpack:"contract_id"`
	Values     map[string]string `json:"values" msgpack:"values"`
	// Deleted tombstones the definition in the lattice cache stream.
	Deleted bool `json:"deleted,omitempty" msgpack:"-"`
}

// LinkID is uppercase hex SHA-256 of actor ‖ contract ‖ link name.
func LinkID(actorID, contractID, linkName string) string {
	sum := sha256.Sum256([]byte(actorID + contractID + linkName))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// Normalize fills the id and default link name and validates the keys.
func (l *LinkDefinition) Normalize() error {
	if l.LinkName == "" {
		l.LinkName = "default"
	}
	if !IsPublicKey(l.ActorID, KindModule) {
		return fmt.Errorf("link definition: actor_id %q is not an actor (M…) key", l.ActorID)
	}
	if !IsPublicKey(l.ProviderID, KindService) {
		return fmt.Errorf("link definition: provider_id %q is not a provider (V…) key", l.ProviderID)
	}
	if l.ContractID == "" {
		return fmt.Errorf("link definition: contract_id is required")
	}
	if l.Values == nil {
		l.Values = map[string]string{}
	}
	l.ID = LinkID(l.ActorID, l.ContractID, l.LinkName)
	return nil
}

// DecodeLinkDefinition parses a msgpack link definition from untrusted bytes.
func DecodeLinkDefinition(data []byte) (*LinkDefinition, error) {
	ld := &LinkDefinition{Values: map[string]string{}}
	r := wire.NewReader(data)
	err := r.Fields(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			ld.ID, err = r.Str()
		case "actor_id":
			ld.ActorID, err = r.Str()
		case "provider_id":
			ld.ProviderID, err = r.Str()
		case "link_name":
			ld.LinkName, err = r.Str()
		case "contract_id":
			ld.ContractID, err = r.Str()
		case "values":
			err = readValues(r, ld.Values)
		default:
			err = r.Skip()
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: link definition: %v", wire.ErrMalformed, err)
	}
	return ld, nil
}

// readValues reads a link's values, a map of strings or nil, into into.
func readValues(r *wire.Reader, into map[string]string) error {
	if t, err := r.Next(); err != nil || t == wire.Nil {
		return r.Skip()
	}
	return r.Fields(func(key []byte) error {
		v, err := r.Str()
		into[string(key)] = v
		return err
	})
}
