package kernel

import (
	"sync"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/armon/go-metrics/prometheus"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Raft and raft-boltdb report through go-metrics' global registry, so a
// process has exactly one sink; SetupMetrics installs it once with the
// node name as the host label.
var (
	metricsOnce     sync.Once
	metricsRegistry *prom.Registry
	metricsErr      error
)

// SetupMetrics installs the process-wide Prometheus sink. Later calls
// return the first registry.
func SetupMetrics(node string) (*prom.Registry, error) {
	metricsOnce.Do(func() {
		reg := prom.NewRegistry()
		sink, err := prometheus.NewPrometheusSinkFrom(prometheus.PrometheusOpts{Registerer: reg, Expiration: 10 * time.Minute})
		if err != nil {
			metricsErr = err
			return
		}
		conf := metrics.DefaultConfig("dominus")
		conf.HostName = node
		conf.EnableHostname = false
		conf.EnableHostnameLabel = true
		conf.EnableRuntimeMetrics = true
		if _, err := metrics.NewGlobal(conf, sink); err != nil {
			metricsErr = err
			return
		}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metricsRegistry = reg
	})
	return metricsRegistry, metricsErr
}

func metricInc(name string)                 { metrics.IncrCounter([]string{name}, 1) }
func metricGauge(name string, v float32)    { metrics.SetGauge([]string{name}, v) }
func metricSince(name string, t0 time.Time) { metrics.MeasureSince([]string{name}, t0) }
