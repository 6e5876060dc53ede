package lattice

// HealthCheckRequest is sent (msgpack) on a provider's health subject
// (RPCHealth). wasmCloud sends an empty map; latticed does the same.
type HealthCheckRequest struct{}

// HealthCheckResponse is a provider's answer (msgpack).
type HealthCheckResponse struct {
	Healthy bool   `json:"healthy" msgpack:"healthy"`
	Message string `json:"message" msgpack:"message"`
}

// ShutdownRequest is the JSON body sent on a provider's shutdown subject
// (RPCShutdown); the provider acknowledges, drains and exits.
type ShutdownRequest struct {
	HostID string `json:"host_id"`
}
