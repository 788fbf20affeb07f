package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/buildgate/buildgate"
)

// Metrics holds the gate's Prometheus metrics.
type Metrics struct {
	reg       *prometheus.Registry
	outcomes  *prometheus.CounterVec
	duration  prometheus.Histogram
	rematches prometheus.Counter
}

// NewMetrics registers the gate's metrics. queue reports the queue depth
// and dbBuilt the vulnerability DB's build time (zero when none is loaded).
func NewMetrics(queue func(ctx context.Context) (queued, analyzing int, err error), dbBuilt func() time.Time) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buildgate_analyses_total", Help: "Analyses finished, by outcome.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "buildgate_analysis_duration_seconds", Help: "Duration of analyses, from claim to result.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		rematches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "buildgate_rematches_total", Help: "Stored SBOMs matched again after a vulnerability DB change.",
		}),
	}
	depth := func(pick func(q, a int) int) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			q, a, err := queue(ctx)
			if err != nil {
				return -1
			}
			return float64(pick(q, a))
		}
	}
	m.reg.MustRegister(m.outcomes, m.duration, m.rematches,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "buildgate_queue_depth", Help: "Images waiting for analysis."},
			depth(func(q, _ int) int { return q })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "buildgate_analyses_running", Help: "Images under analysis."},
			depth(func(_, a int) int { return a })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "buildgate_db_age_seconds", Help: "Age of the vulnerability DB (time since it was built); -1 when none is loaded."},
			func() float64 {
				b := dbBuilt()
				if b.IsZero() {
					return -1
				}
				return time.Since(b).Seconds()
			}),
		collectors.NewGoCollector(),
	)
	for _, o := range []buildgate.Status{buildgate.StatusAnalyzed, buildgate.StatusFailed} {
		m.outcomes.WithLabelValues(string(o))
	}
	return m
}

// countUploads reports n, the uploads, SBOMs and DB imports that hold one
// of the --max-concurrent-uploads slots, as buildgate_uploads_in_progress.
func (m *Metrics) countUploads(n func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "buildgate_uploads_in_progress", Help: "Uploads, SBOMs and DB imports in progress; more than --max-concurrent-uploads are answered 429.",
	}, func() float64 { return float64(n()) }))
}

// ObserveAnalysis records one finished analysis.
func (m *Metrics) ObserveAnalysis(_ string, outcome buildgate.Status, d time.Duration) {
	m.outcomes.WithLabelValues(string(outcome)).Inc()
	m.duration.Observe(d.Seconds())
}

// ObserveRematch records one stored SBOM matched again.
func (m *Metrics) ObserveRematch() { m.rematches.Inc() }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
