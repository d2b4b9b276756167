package relay

import dto "github.com/prometheus/client_model/go"

// ProxyCounts returns the routes s's proxy opened and the commands it
// forwarded on them; session reuse is 1 − opened/forwarded.
func ProxyCounts(s *Server) (opened, forwarded int64) {
	return s.proxy.routes.Counts()
}

// ProxyRoutes is the number of routes s's proxy holds (open or opening).
func ProxyRoutes(s *Server) int { return s.proxy.routes.Len() }

// RoutesOpened is wisp_relay_proxy_routes_opened_total of m.
func RoutesOpened(m *Metrics) float64 {
	var pb dto.Metric
	if err := m.routes.Write(&pb); err != nil {
		panic(err)
	}
	return pb.GetCounter().GetValue()
}

// Proxied is wisp_relay_proxy_forwarded_total of m.
func Proxied(m *Metrics) float64 {
	var pb dto.Metric
	if err := m.proxiedOut.Write(&pb); err != nil {
		panic(err)
	}
	return pb.GetCounter().GetValue()
}
