//go:build !js

// Package relaytest runs real Wisp relays (queues and file chunks, one
// identity, one port, as wisp-relay serves them) on loopback ports for the
// tests of the client-side packages. A relay can be stopped and started again on
// the same port with the same identity and data, to test outages.
//
//	r := relaytest.Start(t)
//	addr := r.Addr()   // wisp://…@127.0.0.1:port
//	r.Stop(); r.Restart()
package relaytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wisp-chat/wisp/server/relay"
	relayfiles "github.com/wisp-chat/wisp/server/relay/files"
	relaystore "github.com/wisp-chat/wisp/server/relay/store"
	"github.com/wisp-chat/wisp/server/wire"
)

// Relay is a relay running in this process.
type Relay struct {
	t     testing.TB
	id    ed25519.PrivateKey
	dir   string
	port  int
	quota int64 // file store quota in bytes
	// crowd: the per-address NEW budget is the relay's (see StartCrowd).
	crowd bool
	// sends counts SENDs accepted over every run of the relay.
	sendsBefore float64
	reg         *prometheus.Registry

	mu    sync.Mutex
	addr  wire.Address
	srv   *relay.Server
	st    *relaystore.Store
	files *relayfiles.Server
	fst   *relayfiles.Store
	http  *http.Server
}

// Start starts a relay with a fresh identity and data directory; it stops
// when the test ends.
func Start(t testing.TB) *Relay {
	t.Helper()
	return StartQuota(t, 1<<30)
}

// StartQuota is Start with a file store quota of quota bytes.
func StartQuota(t testing.TB, quota int64) *Relay {
	t.Helper()
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{t: t, id: id, dir: t.TempDir(), quota: quota}
	r.Restart()
	t.Cleanup(r.Stop)
	return r
}

// StartCrowd is Start for tests that stand for many people: all of them
// connect from 127.0.0.1, so the per-address NEW budget (meant for one
// person or one network) is raised to the whole relay's.
func StartCrowd(t testing.TB) *Relay {
	t.Helper()
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{t: t, id: id, dir: t.TempDir(), quota: 1 << 30, crowd: true}
	r.Restart()
	t.Cleanup(r.Stop)
	return r
}

// Sends is the number of SENDs the relay accepted since it started first
// (each carries one fixed-size message).
func (r *Relay) Sends() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.sendsBefore + r.sendsNow())
}

// sendsNow reads the running relay's counter; r.mu held.
func (r *Relay) sendsNow() float64 {
	if r.reg == nil {
		return 0
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wisp_relay_sends_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// Addr is the relay's address.
func (r *Relay) Addr() wire.Address {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Restart starts the relay again after Stop, on the same port.
func (r *Relay) Restart() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
	if err != nil {
		r.t.Fatal(err)
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	st, err := relaystore.Open(filepath.Join(r.dir, "queues.db"))
	if err != nil {
		r.t.Fatal(err)
	}
	limits := relay.DefaultLimits()
	if r.crowd {
		limits.NewPerMinuteAddr = limits.NewPerMinuteRelay
	}
	r.reg = prometheus.NewRegistry()
	metrics, err := relay.NewMetrics(r.reg, st.Counts)
	if err != nil {
		r.t.Fatal(err)
	}
	// The relays of a test are all on loopback: as proxies they may
	// reach each other (private routing), as wisp-relay -proxy-private.
	srv, err := relay.New(relay.Config{Identity: r.id, Store: st, Limits: limits, Metrics: metrics,
		Proxy: relay.ProxyConfig{AllowPrivate: true}})
	if err != nil {
		r.t.Fatal(err)
	}
	fst, err := relayfiles.OpenStore(r.FilesDir(), r.quota)
	if err != nil {
		r.t.Fatal(err)
	}
	files, err := relayfiles.New(relayfiles.Config{Identity: r.id, Store: fst, Limits: relayfiles.DefaultLimits(),
		Logger: slog.New(slog.DiscardHandler), QueueKey: srv.QueueKey, Proxy: relayfiles.ProxyConfig{AllowPrivate: true}})
	if err != nil {
		r.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(wire.EndpointPath, srv)
	mux.Handle(wire.FilesPath, files)
	r.srv, r.st, r.files, r.fst, r.http = srv, st, files, fst, &http.Server{Handler: mux}
	go r.http.Serve(ln)
	r.addr = srv.Address("127.0.0.1", uint16(r.port))
}

// Stop stops the relay (its sessions end, its port closes).
func (r *Relay) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return
	}
	_ = r.srv.Close()
	r.sendsBefore += r.sendsNow()
	r.reg = nil
	_ = r.files.Close()
	_ = r.http.Close()
	_ = r.st.Close()
	_ = r.fst.Close()
	r.srv = nil
}

// FilesDir is where the relay keeps file chunks (for tamper tests).
func (r *Relay) FilesDir() string { return filepath.Join(r.dir, "files") }

// Forwarded is the number of commands the running relay ran for a proxy
// (RFWD, queue endpoint), and Proxied the number it forwarded for its
// own clients (PFWD): private routing's counters.
func (r *Relay) Forwarded() int { return r.counter("wisp_relay_forwarded_in_total") }

// Proxied: see Forwarded.
func (r *Relay) Proxied() int { return r.counter("wisp_relay_proxy_forwarded_total") }

func (r *Relay) counter(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		return 0
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}
