package supervisor

import (
	"encoding/json"
	"maps"
	"runtime"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/latticed/latticed/lattice"
)

// hostLabels mirrors the host child's labels from the host's own events
// (host_started, labels_changed and host_heartbeat each carry all of them),
// so that the supervisor, asking the policy service on the host's behalf,
// describes the host with the labels the host holds, including those set
// through the control interface. Until the host first says, they are the
// labels the host starts with: the configured ones and the core labels.
type hostLabels struct {
	hostID string

	mu     sync.Mutex
	labels map[string]string
}

func newHostLabels(hostID string, configured map[string]string) *hostLabels {
	labels := maps.Clone(configured)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, lattice.CoreLabels(runtime.GOARCH, runtime.GOOS)) // they win, as on the host
	return &hostLabels{hostID: hostID, labels: labels}
}

// handle folds one lattice event in.
func (l *hostLabels) handle(m *nats.Msg) {
	var ev lattice.CloudEvent
	if json.Unmarshal(m.Data, &ev) != nil || ev.Source != l.hostID {
		return
	}
	switch strings.TrimPrefix(ev.Type, lattice.EventTypePrefix) {
	case lattice.EventHostStarted, lattice.EventLabelsChanged, lattice.EventHostHeartbeat:
	default:
		return
	}
	var d struct {
		Labels map[string]string `json:"labels"`
	}
	if json.Unmarshal(ev.Data, &d) != nil || d.Labels == nil {
		return
	}
	l.mu.Lock()
	l.labels = d.Labels
	l.mu.Unlock()
}

// get is a copy of the host's labels.
func (l *hostLabels) get() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.labels)
}
