package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wisp-chat/wisp/server/wire"
)

// Metrics are the relay's Prometheus metrics: counts only, never IDs or
// addresses. Create them with NewMetrics and pass them in Config.
type Metrics struct {
	conns      prometheus.Gauge
	sends      prometheus.Counter
	deliveries prometheus.Counter
	queuesNew  prometheus.Counter
	errors     *prometheus.CounterVec
	closed     *prometheus.CounterVec
	routes     prometheus.Counter
	proxiedOut prometheus.Counter
	fwdIn      prometheus.Counter
}

// NewMetrics registers the relay metrics on reg. counts reports the
// number of queues and stored messages (the store's Counts).
func NewMetrics(reg prometheus.Registerer, counts func() (queues, messages int64, err error)) (*Metrics, error) {
	m := &Metrics{
		conns:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "wisp_relay_connections", Help: "Open WebSocket connections."}),
		sends:      prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_sends_total", Help: "Messages accepted (SEND answered OK)."}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_deliveries_total", Help: "MSG transmissions pushed to subscribers or returned by GET."}),
		queuesNew:  prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_queues_created_total", Help: "Queues created by NEW."}),
		errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wisp_relay_errors_total", Help: "ERR answers by code."}, []string{"code"}),
		closed:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wisp_relay_protocol_closes_total", Help: "Connections closed for protocol violations, by reason."}, []string{"reason"}),
		routes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_proxy_routes_opened_total", Help: "Sessions this relay opened to destination relays for private routing."}),
		proxiedOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_proxy_forwarded_total", Help: "Commands this relay forwarded for its clients (PFWD)."}),
		fwdIn:      prometheus.NewCounter(prometheus.CounterOpts{Name: "wisp_relay_forwarded_in_total", Help: "Forwarded commands this relay ran as a destination (RFWD)."}),
	}
	gauge := func(name, help string, pick func(q, n int64) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			q, n, err := counts()
			if err != nil {
				return -1
			}
			return float64(pick(q, n))
		})
	}
	cs := []prometheus.Collector{m.conns, m.sends, m.deliveries, m.queuesNew, m.errors, m.closed, m.routes, m.proxiedOut, m.fwdIn,
		gauge("wisp_relay_queues", "Queues stored.", func(q, _ int64) int64 { return q }),
		gauge("wisp_relay_messages_stored", "Messages stored and not yet acknowledged.", func(_, n int64) int64 { return n }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, c := range wire.AllCodes() {
		m.errors.WithLabelValues(c.String())
	}
	return m, nil
}

func (m *Metrics) connDelta(d float64) {
	if m != nil {
		m.conns.Add(d)
	}
}

func (m *Metrics) sent() {
	if m != nil {
		m.sends.Inc()
	}
}

func (m *Metrics) delivered() {
	if m != nil {
		m.deliveries.Inc()
	}
}

func (m *Metrics) created() {
	if m != nil {
		m.queuesNew.Inc()
	}
}

func (m *Metrics) errored(c wire.ErrCode) {
	if m != nil {
		m.errors.WithLabelValues(c.String()).Inc()
	}
}

func (m *Metrics) closedFor(reason string) {
	if m != nil {
		m.closed.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) routeOpened() {
	if m != nil {
		m.routes.Inc()
	}
}

func (m *Metrics) proxied() {
	if m != nil {
		m.proxiedOut.Inc()
	}
}

func (m *Metrics) forwardedIn() {
	if m != nil {
		m.fwdIn.Inc()
	}
}
