package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/latticed/latticed/internal/admin"
)

// answerAdmin runs one admin request; every operation is a Supervisor method.
func (s *Supervisor) answerAdmin(ctx context.Context, req *admin.Request, resp *admin.Response) {
	var err error
	switch req.Op {
	case admin.OpStatus:
		st := s.Status()
		resp.Status = &st
	case admin.OpProviders:
		resp.Providers = s.Providers()
	case admin.OpLaunch:
		if req.Launch == nil {
			err = errors.New("launch: missing \"launch\"")
			break
		}
		err = s.LaunchProvider(ctx, *req.Launch)
	case admin.OpStop, admin.OpRevoke:
		if req.Provider == nil {
			err = fmt.Errorf("%s: missing \"provider\"", req.Op)
			break
		}
		if req.Op == admin.OpStop {
			err = s.StopProvider(ctx, *req.Provider)
			break
		}
		var rep admin.RevocationReport
		if rep, err = s.Revoke(ctx, *req.Provider); err == nil {
			resp.Revocation = &rep
		}
	case admin.OpRestart:
		err = s.Restart(ctx, req.Target, req.Provider)
	case admin.OpHostHello:
		hs := s.hostSettings()
		resp.HostSettings = &hs
	case admin.OpHostReady:
		if req.Host == nil {
			err = errors.New("host_ready: missing \"host\"")
			break
		}
		err = s.hostReady(*req.Host)
	default:
		err = fmt.Errorf("unknown admin operation %q", req.Op)
	}
	if err != nil {
		resp.Error = err.Error()
	}
}
