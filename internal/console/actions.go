package console

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/latticed/latticed/lattice"
)

// actions are the page's buttons, by path under /api/: each goes through
// the control interface as the `latticed ctl` command of the same name.
func (s *Server) actions() map[string]actionFunc {
	c := s.opts.Control
	return map[string]actionFunc{
		"actors/start": func(ctx context.Context, body json.RawMessage) (string, error) {
			var req struct {
				HostID string `json:"host_id"`
				Ref    string `json:"ref"`
				Count  int    `json:"count"`
			}
			if err := decode(body, &req); err != nil {
				return "", err
			}
			if err := need(map[string]string{"host_id": req.HostID, "ref": req.Ref}); err != nil {
				return "", err
			}
			req.Count = max(req.Count, 1)
			ctx, cancel := context.WithTimeout(ctx, startTimeout)
			defer cancel()
			got, err := c.StartActor(ctx, req.HostID, lattice.StartActorCommand{ActorRef: req.Ref, Count: req.Count})
			if err != nil {
				return "", fmt.Errorf("start actor %s on host %s: %w", req.Ref, req.HostID, err)
			}
			return fmt.Sprintf("actor %s started (%d instance(s)) on host %s", got.ActorID, got.Count, got.HostID), nil
		},
		"actors/scale": func(ctx context.Context, body json.RawMessage) (string, error) {
			var req struct {
				HostID   string `json:"host_id"`
				ActorID  string `json:"actor_id"`
				ActorRef string `json:"actor_ref"`
				Count    int    `json:"count"`
			}
			if err := decode(body, &req); err != nil {
				return "", err
			}
			if err := need(map[string]string{"host_id": req.HostID, "actor_id": req.ActorID}); err != nil {
				return "", err
			}
			if req.Count < 0 {
				return "", fmt.Errorf("%w: count must be 0 or more", errBadRequest)
			}
			ctx, cancel := context.WithTimeout(ctx, startTimeout)
			defer cancel()
			if err := c.ScaleActor(ctx, req.HostID, lattice.ScaleActorCommand{ActorID: req.ActorID, ActorRef: req.ActorRef, Count: req.Count}); err != nil {
				return "", fmt.Errorf("scale actor %s on host %s to %d: %w", req.ActorID, req.HostID, req.Count, err)
			}
			return fmt.Sprintf("actor %s: scaling to %d instance(s) on host %s", req.ActorID, req.Count, req.HostID), nil
		},
		"actors/stop": func(ctx context.Context, body json.RawMessage) (string, error) {
			var req struct {
				HostID  string `json:"host_id"`
				ActorID string `json:"actor_id"`
			}
			if err := decode(body, &req); err != nil {
				return "", err
			}
			if err := need(map[string]string{"host_id": req.HostID, "actor_id": req.ActorID}); err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(ctx, actionTimeout)
			defer cancel()
			if err := c.StopActor(ctx, req.HostID, req.ActorID, 0); err != nil {
				return "", fmt.Errorf("stop actor %s on host %s: %w", req.ActorID, req.HostID, err)
			}
			return fmt.Sprintf("actor %s: stopping every instance on host %s", req.ActorID, req.HostID), nil
		},
		"links/put": func(ctx context.Context, body json.RawMessage) (string, error) {
			var ld lattice.LinkDefinition
			if err := decode(body, &ld); err != nil {
				return "", err
			}
			if err := need(map[string]string{"actor_id": ld.ActorID, "provider_id": ld.ProviderID, "contract_id": ld.ContractID}); err != nil {
				return "", err
			}
			if ld.LinkName == "" {
				ld.LinkName = "default"
			}
			ctx, cancel := context.WithTimeout(ctx, actionTimeout)
			defer cancel()
			if err := c.PutLink(ctx, ld); err != nil {
				return "", fmt.Errorf("put link %s → %s (%s, link name %s): %w", ld.ActorID, ld.ProviderID, ld.ContractID, ld.LinkName, err)
			}
			return fmt.Sprintf("link put: %s → %s (%s, link name %s)", ld.ActorID, ld.ProviderID, ld.ContractID, ld.LinkName), nil
		},
		"links/delete": func(ctx context.Context, body json.RawMessage) (string, error) {
			var req struct {
				ActorID    string `json:"actor_id"`
				ContractID string `json:"contract_id"`
				LinkName   string `json:"link_name"`
			}
			if err := decode(body, &req); err != nil {
				return "", err
			}
			if err := need(map[string]string{"actor_id": req.ActorID, "contract_id": req.ContractID, "link_name": req.LinkName}); err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(ctx, actionTimeout)
			defer cancel()
			if err := c.DelLink(ctx, req.ActorID, req.ContractID, req.LinkName); err != nil {
				return "", fmt.Errorf("delete link of %s (%s, link name %s): %w", req.ActorID, req.ContractID, req.LinkName, err)
			}
			return fmt.Sprintf("link deleted: %s (%s, link name %s)", req.ActorID, req.ContractID, req.LinkName), nil
		},
		"providers/revoke": func(ctx context.Context, body json.RawMessage) (string, error) {
			var req struct {
				HostID     string `json:"host_id"`
				ProviderID string `json:"provider_id"`
				LinkName   string `json:"link_name"`
			}
			if err := decode(body, &req); err != nil {
				return "", err
			}
			if err := need(map[string]string{"host_id": req.HostID, "provider_id": req.ProviderID, "link_name": req.LinkName}); err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(ctx, actionTimeout)
			defer cancel()
			if err := c.RevokeProvider(ctx, req.HostID, lattice.StopProviderCommand{ProviderRef: req.ProviderID, LinkName: req.LinkName}); err != nil {
				return "", fmt.Errorf("revoke provider %s (link name %s) on host %s: %w", req.ProviderID, req.LinkName, req.HostID, err)
			}
			return fmt.Sprintf("provider %s (link name %s) revoked on host %s: its NATS user is refused from now on", req.ProviderID, req.LinkName, req.HostID), nil
		},
	}
}
