package metrics

import (
	"sort"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// natsConn is the part of *nats.Conn the collector reads.
type natsConn = *nats.Conn

// NATSConns is a collector of NATS connection statistics: each process
// tracks its connections by role (the conn label) and every scrape reads
// nats.Conn.Stats(), so nothing is counted twice.
type NATSConns struct {
	connected, reconnects, inBytes, outBytes, inMsgs, outMsgs *prometheus.Desc

	mu    sync.Mutex
	conns map[string]natsConn
}

// Track reports nc under role (e.g. rpc, ctl, supervisor, provider); a
// later Track with the same role replaces it, a nil nc forgets the role.
func (c *NATSConns) Track(role string, nc *nats.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc == nil {
		delete(c.conns, role)
		return
	}
	c.conns[role] = nc
}

// Describe implements prometheus.Collector.
func (c *NATSConns) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.reconnects, c.inBytes, c.outBytes, c.inMsgs, c.outMsgs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *NATSConns) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	roles := make([]string, 0, len(c.conns))
	for r := range c.conns {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	conns := make([]natsConn, len(roles))
	for i, r := range roles {
		conns[i] = c.conns[r]
	}
	c.mu.Unlock()
	for i, nc := range conns {
		role := roles[i]
		up := 0.0
		if nc.IsConnected() {
			up = 1
		}
		st := nc.Stats()
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up, role)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects), role)
		ch <- prometheus.MustNewConstMetric(c.inBytes, prometheus.CounterValue, float64(st.InBytes), role)
		ch <- prometheus.MustNewConstMetric(c.outBytes, prometheus.CounterValue, float64(st.OutBytes), role)
		ch <- prometheus.MustNewConstMetric(c.inMsgs, prometheus.CounterValue, float64(st.InMsgs), role)
		ch <- prometheus.MustNewConstMetric(c.outMsgs, prometheus.CounterValue, float64(st.OutMsgs), role)
	}
}
