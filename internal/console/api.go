package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// How long an action may take: starting an actor may pull and compile it.
const (
	actionTimeout = 30 * time.Second
	startTimeout  = 2 * time.Minute
	feedBuffer    = 256
	feedHeartbeat = 15 * time.Second
)

// State is what the page shows: everything one refresh gathers.
type State struct {
	Hosts         []lattice.HostInfo       `json:"hosts"`
	Inventories   []*lattice.HostInventory `json:"inventories"`
	Claims        []lattice.CachedClaims   `json:"claims"`
	Links         []lattice.LinkDefinition `json:"links"`
	ProviderUsers []ProviderUser           `json:"provider_users"`
	Errors        []string                 `json:"errors"` // what could not be read, shown on the page
	Refreshed     time.Time                `json:"refreshed"`
}

// secretValue matches link value names whose values the page does not show.
var secretValue = regexp.MustCompile(`(?i)pass|secret|token|seed|cred|key|jwt`)

const hidden = "(hidden)"

// state answers GET /api/state from the control interface and the lattice
// cache, as `latticed ctl get` does.
func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	st := State{Inventories: []*lattice.HostInventory{}, Claims: []lattice.CachedClaims{}, Links: []lattice.LinkDefinition{}, Errors: []string{}}
	c := s.opts.Control
	var err error
	if st.Hosts, err = c.Hosts(ctx, s.opts.HostWindow); err != nil {
		st.Errors = append(st.Errors, "hosts: "+err.Error())
	}
	for _, h := range st.Hosts {
		inv, err := c.Inventory(ctx, h.ID)
		if err != nil {
			st.Errors = append(st.Errors, "inventory of "+h.ID+": "+err.Error())
			continue
		}
		st.Inventories = append(st.Inventories, inv)
	}
	if claims, err := c.Claims(ctx); err != nil {
		st.Errors = append(st.Errors, "claims: "+err.Error())
	} else {
		st.Claims = claims
	}
	if links, err := c.Links(ctx); err != nil {
		st.Errors = append(st.Errors, "links: "+err.Error())
	} else {
		st.Links = hideSecrets(links)
	}
	if s.opts.ProviderUsers != nil {
		st.ProviderUsers = s.opts.ProviderUsers()
	}
	st.Refreshed = time.Now().UTC()
	writeJSON(w, http.StatusOK, st)
}

// hideSecrets replaces link values that look like credentials: a link may
// carry a database password, and the page is no place for it.
func hideSecrets(links []lattice.LinkDefinition) []lattice.LinkDefinition {
	out := slices.Clone(links)
	for i, ld := range out {
		if len(ld.Values) == 0 {
			continue
		}
		vals := make(map[string]string, len(ld.Values))
		for k, v := range ld.Values {
			if secretValue.MatchString(k) {
				v = hidden
			}
			vals[k] = v
		}
		out[i].Values = vals
	}
	return out
}

// events is the live feed: every CloudEvent of the lattice, as
// server-sent events, until the page goes away or the console stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan *nats.Msg, feedBuffer)
	sub, err := s.opts.Events.ChanSubscribe(s.opts.EventSubject, ch)
	if err != nil {
		http.Error(w, "subscribe to the lattice's events: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.opts.Events.Flush(); err != nil { // subscribed before the page refreshes: no change falls between
		http.Error(w, "subscribe to the lattice's events: "+err.Error(), http.StatusBadGateway)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": subscribed\n\n")
	fl.Flush()
	tick := time.NewTicker(feedHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		case m := <-ch:
			b, ok := feedEvent(m.Data)
			if !ok {
				continue // not a CloudEvent; nothing a page could show
			}
			_, err = fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if err != nil {
			return
		}
		fl.Flush()
	}
}

// feedEvent is an event as the feed sends it: on one line (as an SSE data
// field needs), with link values that look like credentials hidden (a
// linkdef_set event carries the link's values).
func feedEvent(b []byte) ([]byte, bool) {
	var ev lattice.CloudEvent
	if err := json.Unmarshal(b, &ev); err != nil || ev.Type == "" {
		return nil, false
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(ev.Data, &data) == nil {
		var vals map[string]string
		if raw, ok := data["values"]; ok && json.Unmarshal(raw, &vals) == nil {
			for k := range vals {
				if secretValue.MatchString(k) {
					vals[k] = hidden
				}
			}
			data["values"], _ = json.Marshal(vals)
			ev.Data, _ = json.Marshal(data)
		}
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, false
	}
	var line bytes.Buffer
	if json.Compact(&line, out) != nil {
		return nil, false
	}
	return line.Bytes(), true
}

// result is an action's answer: what happened, or why not.
type result struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// errBadRequest marks what the page sent wrong (400, not 502).
var errBadRequest = errors.New("bad request")

type actionFunc func(ctx context.Context, body json.RawMessage) (string, error)

// action checks the CSRF token, bounds the body and the time, and answers
// with the outcome.
func (s *Server) action(h actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.checkCSRF(r) {
			writeJSON(w, http.StatusForbidden, result{Error: "missing or wrong " + csrfHeader + " header: reload the console page"})
			return
		}
		var body json.RawMessage
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err := dec.Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, result{Error: "request body: " + err.Error()})
			return
		}
		msg, err := h(r.Context(), body)
		switch {
		case errors.Is(err, errBadRequest):
			writeJSON(w, http.StatusBadRequest, result{Error: err.Error()})
		case err != nil:
			s.log.Warn("console action failed", "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusBadGateway, result{Error: err.Error()})
		default:
			s.log.Info("console action", "path", r.URL.Path, "outcome", msg)
			writeJSON(w, http.StatusOK, result{OK: true, Message: msg})
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads an action's body strictly.
func decode(body json.RawMessage, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

func need(fields map[string]string) error {
	for name, v := range fields {
		if v == "" {
			return fmt.Errorf("%w: %s is required", errBadRequest, name)
		}
	}
	return nil
}
