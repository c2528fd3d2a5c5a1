package bus

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bus's Prometheus collectors.
type Metrics struct {
	published      *prometheus.CounterVec
	publishErrors  prometheus.Counter
	publishSeconds prometheus.Histogram
	handled        *prometheus.CounterVec
	handleSeconds  *prometheus.HistogramVec
	poison         *prometheus.CounterVec
	invalid        *prometheus.CounterVec
	sourceResets   prometheus.Counter
	sourceLag      prometheus.Gauge
}

// NewMetrics creates the collectors and registers them with reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatch_bus_published_total", Help: "Events stored in the site's log, by type.",
		}, []string{"type"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drwatch_bus_publish_errors_total", Help: "Publishes not acknowledged by JetStream.",
		}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "drwatch_bus_publish_seconds", Help: "Time from publish to JetStream acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatch_bus_handled_total", Help: "Messages handled by consumers, by outcome (ok, retry, poison).",
		}, []string{"consumer", "outcome"}),
		handleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "drwatch_bus_handle_seconds", Help: "Handler run time.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"consumer"}),
		poison: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatch_bus_poison_total", Help: "Messages parked in the POISON stream, by consumer.",
		}, []string{"consumer"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drwatch_bus_invalid_total", Help: "Invalid events rejected, by side (publish, replay).",
		}, []string{"side"}),
		sourceResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drwatch_bus_source_resets_total", Help: "Times the peer source was re-established after a stall.",
		}),
		sourceLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drwatch_bus_source_lag_messages", Help: "Peer events not yet copied into this site's log.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.publishErrors, m.publishSeconds, m.handled, m.handleSeconds,
			m.poison, m.invalid, m.sourceResets, m.sourceLag)
	}
	return m
}
