package lattice

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event types (the part after com.wasmcloud.lattice.).
const (
	EventHostStarted         = "host_started"
	EventHostStopped         = "host_stopped"
	EventHostHeartbeat       = "host_heartbeat"
	EventActorStarted        = "actor_started"
	EventActorStopped        = "actor_stopped"
	EventActorsStarted       = "actors_started"
	EventActorsStopped       = "actors_stopped"
	EventActorStartFailed    = "actor_start_failed" // an instance did not start: actor_ref, error
	EventActorsStartFailed   = "actors_start_failed"
	EventActorUpdated        = "actor_updated"
	EventActorUpdateFailed   = "actor_update_failed"
	EventProviderStarted     = "provider_started"
	EventProviderStopped     = "provider_stopped"
	EventProviderStartFailed = "provider_start_failed"
	EventHealthCheckPassed   = "health_check_passed"
	EventHealthCheckFailed   = "health_check_failed"
	EventHealthCheckStatus   = "health_check_status"
	EventLinkdefSet          = "linkdef_set"
	EventLinkdefSetFailed    = "linkdef_set_failed" // wasmCloud 1.x; latticed: a provider refused a link (actor_id, provider_id, contract_id, link_name, error)
	EventLinkdefDeleted      = "linkdef_deleted"
	EventRefmapSet           = "refmap_set"
	EventInvocationSucceeded = "invocation_succeeded"
	EventInvocationFailed    = "invocation_failed"
	EventProviderRevoked     = "provider_revoked"    // latticed extension
	EventInvocationRejected  = "invocation_rejected" // latticed extension
	EventLabelsChanged       = "labels_changed"      // latticed extension
	EventProviderFailed      = "provider_failed"     // latticed extension: crash loop, no more restarts
	EventHostCrashed         = "host_crashed"        // latticed extension: the host process ended unasked
)

// EventTypePrefix precedes every event type.
const EventTypePrefix = "com.wasmcloud.lattice."

// CloudEvent is a CloudEvents 1.0 JSON envelope.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	Time            string          `json:"time"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	DataContentType string          `json:"datacontenttype"`
	ID              string          `json:"id"`
	Data            json.RawMessage `json:"data"`
}

// NewEvent builds an event of eventType (e.g. EventActorStarted) from source with data.
func NewEvent(source, eventType string, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(CloudEvent{
		SpecVersion: "1.0", Time: time.Now().UTC().Format(time.RFC3339Nano),
		Type: EventTypePrefix + eventType, Source: source,
		DataContentType: "application/json", ID: uuid.NewString(), Data: raw,
	})
}
