package policy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a decision, as the metric's result label says them: an error
// is no, late or undecodable answer (a denial too, since the host fails closed).
const (
	ResultPermitted = "permitted"
	ResultDenied    = "denied"
	ResultError     = "error"
)

// Observer is told every decision: action, result and whether the cached
// decision was used.
type Observer func(action, result string, cached bool)

// ObserveDecisions sets the observer. Call it before the service is used.
func (p *Service) ObserveDecisions(o Observer) { p.observe = o }

func (p *Service) record(action, result string, cached bool) {
	if p.observe != nil {
		p.observe(action, result, cached)
	}
}

// CountDecisions counts decisions into vec (labels action, result, cached),
// with the counters of known actions resolved once, so the cached path of an
// invocation pays an array index and an atomic add.
func CountDecisions(vec *prometheus.CounterVec) Observer {
	actions := []string{ActionStartActor, ActionStartProvider, ActionPerformInvocation}
	results := []string{ResultPermitted, ResultDenied, ResultError}
	counters := map[string]*[3][2]prometheus.Counter{}
	for _, a := range actions {
		var c [3][2]prometheus.Counter
		for i, r := range results {
			for j := range 2 {
				c[i][j] = vec.WithLabelValues(a, r, strconv.FormatBool(j == 1))
			}
		}
		counters[a] = &c
	}
	return func(action, result string, cached bool) {
		i := 0
		switch result {
		case ResultDenied:
			i = 1
		case ResultError:
			i = 2
		}
		j := 0
		if cached {
			j = 1
		}
		if c, ok := counters[action]; ok {
			c[i][j].Inc()
			return
		}
		vec.WithLabelValues(action, result, strconv.FormatBool(cached)).Inc()
	}
}
