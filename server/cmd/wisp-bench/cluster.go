package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wisp-chat/wisp/server/internal/pgtest"
	"github.com/wisp-chat/wisp/server/wire"
)

// clusterConfig is relay -cluster's flags.
type clusterConfig struct {
	relayBin, storeURL        string
	conns, queues, msgs, size int
	lockstep                  bool
}

// storeRun is one run of relay -cluster.
type storeRun struct {
	Name      string  `json:"name"`  // bbolt-1, postgres-1, postgres-2
	Store     string  `json:"store"` // bbolt or postgres
	Processes int     `json:"processes"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P95ms     float64 `json:"p95_ms"`
	P99ms     float64 `json:"p99_ms"`
	RelayCPUs float64 `json:"relay_cpu_s"` // summed over the relay processes
	// DBCPUs is the PostgreSQL server's CPU seconds (postmaster and
	// every process under it); absent for bbolt, or when its processes
	// could not be found.
	DBCPUs   *float64 `json:"db_cpu_s,omitempty"`
	RSSBytes int64    `json:"rss_bytes"` // summed over the relay processes, at the end
	Ratio    float64  `json:"ratio"`     // msgs_per_s / the echo baseline's
}

// runSpec says how to start one run's relay.
type runSpec struct {
	name, label string
	procs       int
	db          *benchDatabase // nil: bbolt
	files       string         // shared -files folder ("": each process's own)
}

func runCluster(cfg clusterConfig) error {
	bin, err := relayBin(cfg.relayBin)
	if err != nil {
		return err
	}
	pg, err := startBenchPostgres(cfg.storeURL)
	if err != nil {
		return fmt.Errorf("-cluster: %w", err)
	}
	defer pg.close()
	// Both databases now, so that a server refusing them fails the
	// benchmark before its first run rather than after it.
	db1, err := pg.newDatabase()
	if err != nil {
		return err
	}
	db2, err := pg.newDatabase()
	if err != nil {
		return err
	}
	postmaster, err := findPostmaster(db1)
	switch {
	case err != nil && pg.kind == "pgtest":
		return fmt.Errorf("finding the PostgreSQL server's processes: %w", err)
	case err != nil:
		fmt.Fprintf(os.Stderr, "wisp-bench: the PostgreSQL server's CPU is not measured: %v\n", err)
	}
	shared, err := os.MkdirTemp("", "wisp-bench-files-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(shared)

	specs := []runSpec{
		{name: "bbolt-1", label: "bbolt, 1 process", procs: 1},
		{name: "postgres-1", label: "postgres, 1 process", procs: 1, db: db1},
		{name: "postgres-2", label: "postgres, 2 processes", procs: 2, db: db2, files: shared},
	}
	res := relayResult{Conns: cfg.conns, Queues: cfg.queues, Msgs: cfg.msgs, Size: cfg.size, Postgres: pg.kind}
	for _, spec := range specs {
		r, err := cfg.measure(bin, spec, postmaster)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.label, err)
		}
		res.Runs = append(res.Runs, r)
	}

	total := cfg.queues * cfg.msgs
	bare, baddr, err := startBare()
	if err != nil {
		return err
	}
	defer bare.stop()
	bps, blat, err := echoBaseline(baddr, cfg.conns, total, cfg.queues)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	res.BaselineMsgsPerS = bps
	res.BaselineP50ms, res.BaselineP99ms = percentile(blat, 0.50), percentile(blat, 0.99)
	for i := range res.Runs {
		res.Runs[i].Ratio = res.Runs[i].MsgsPerS / bps
	}
	a := res.Runs[0]
	res.MsgsPerS, res.P50ms, res.P95ms, res.P99ms = a.MsgsPerS, a.P50ms, a.P95ms, a.P99ms
	res.RSSBytes, res.RelayCPUs, res.Ratio = a.RSSBytes, a.RelayCPUs, a.Ratio

	fmt.Printf("%-24s %5s %9s %8s %8s %11s %8s %8s %10s %7s\n",
		"run", "procs", "msgs/s", "p50 ms", "p99 ms", "relay CPU s", "db CPU s", "RSS MiB", "CPU µs/msg", "ratio")
	for i, r := range res.Runs {
		db, cpu := "-", r.RelayCPUs
		if r.DBCPUs != nil {
			db = fmt.Sprintf("%.2f", *r.DBCPUs)
			cpu += *r.DBCPUs
		} else if specs[i].db != nil {
			db = "n/a"
		}
		fmt.Printf("%-24s %5d %9.0f %8.2f %8.2f %11.2f %8s %8.1f %10.0f %7.3f\n",
			specs[i].label, r.Processes, r.MsgsPerS, r.P50ms, r.P99ms, r.RelayCPUs, db, float64(r.RSSBytes)/(1<<20), 1e6*cpu/float64(total), r.Ratio)
	}
	fmt.Printf("%-24s %5s %9.0f %8.2f %8.2f %11s %8s %8s %10s %7.3f\n",
		"bare websocket echo", "-", bps, res.BaselineP50ms, res.BaselineP99ms, "-", "-", "-", "-", 1.0)
	where := "throwaway server (pgtest, fsync on)"
	if pg.kind == "store" {
		where = "the -store server (db CPU includes all its other work)"
	}
	fmt.Printf("conns=%d queues=%d msgs/queue=%d size=%d total=%d; postgres: %s; 2 processes: connection i on process i%%2, every queue's sender and recipient on different processes; CPU µs/msg = (relay + db CPU) / messages\n",
		cfg.conns, cfg.queues, cfg.msgs, cfg.size, total, where)
	return printJSON(res)
}

// measure starts spec's relay processes, drives the load over them and
// stops them. postmaster (0: unknown) is the PostgreSQL server whose CPU
// a PostgreSQL run reports.
func (cfg clusterConfig) measure(bin string, spec runSpec, postmaster int) (storeRun, error) {
	r := storeRun{Name: spec.name, Store: "bbolt", Processes: spec.procs}
	var env, extra []string
	if spec.db != nil {
		r.Store = "postgres"
		env, extra = spec.db.env, []string{"-store", spec.db.relayDSN}
		if spec.files != "" {
			extra = append(extra, "-files", spec.files)
		}
	}
	g, err := spawnRelayGroup(bin, spec.procs, env, extra...)
	if err != nil {
		return r, err
	}
	defer g.stop()
	measureDB := spec.db != nil && postmaster > 0
	var db0 time.Duration
	if measureDB {
		if db0, err = treeCPU(postmaster); err != nil {
			return r, fmt.Errorf("PostgreSQL CPU: %w", err)
		}
	}
	cpu0 := g.cpu()
	d, err := driveRelay(g.addrs, nil, cfg.conns, cfg.queues, cfg.msgs, cfg.size, cfg.lockstep, 0)
	if err != nil {
		return r, err
	}
	r.RelayCPUs = (g.cpu() - cpu0).Seconds()
	if measureDB {
		db1, err := treeCPU(postmaster)
		if err != nil {
			return r, fmt.Errorf("PostgreSQL CPU: %w", err)
		}
		s := (db1 - db0).Seconds()
		r.DBCPUs = &s
	}
	r.MsgsPerS = float64(cfg.queues*cfg.msgs) / d.elapsed.Seconds()
	r.P50ms, r.P95ms, r.P99ms = percentile(d.lats, 0.50), percentile(d.lats, 0.95), percentile(d.lats, 0.99)
	r.RSSBytes = g.rss()
	return r, nil
}

// relayGroup is relay processes started one after the other on the same
// flags: with a PostgreSQL store, processes of one relay.
type relayGroup struct {
	procs    []*child
	addrs    []wire.Address
	cleanups []func()
}

// spawnRelayGroup starts n relay processes with spawnRelayProcess, each
// once the previous one listens (the first creates the tables and the
// identity), and checks that they are one relay on loopback.
func spawnRelayGroup(bin string, n int, env []string, extra ...string) (*relayGroup, error) {
	g := &relayGroup{}
	for range n {
		c, line, cleanup, err := spawnRelayProcess(bin, env, extra...)
		if err != nil {
			g.stop()
			return nil, err
		}
		g.procs, g.cleanups = append(g.procs, c), append(g.cleanups, cleanup)
		addr, err := wire.ParseAddress(line)
		switch {
		case err != nil:
		case !addr.IsLoopback():
			err = errors.New("wisp-bench only talks to loopback relays")
		case len(g.addrs) > 0 && addr.KeyHash != g.addrs[0].KeyHash:
			err = errors.New("relay processes on one store have different identities")
		}
		if err != nil {
			g.stop()
			return nil, err
		}
		g.addrs = append(g.addrs, addr)
	}
	return g, nil
}

func (g *relayGroup) cpu() time.Duration {
	var d time.Duration
	for _, c := range g.procs {
		d += c.cpu()
	}
	return d
}

func (g *relayGroup) rss() int64 {
	var n int64
	for _, c := range g.procs {
		n += c.rss()
	}
	return n
}

func (g *relayGroup) stop() {
	for i := len(g.cleanups) - 1; i >= 0; i-- {
		g.cleanups[i]()
	}
	g.cleanups = nil
}

// benchPostgres is the PostgreSQL server of relay -cluster: a throwaway
// one, or the -store one, where only the databases it created are
// dropped.
type benchPostgres struct {
	kind string         // "pgtest" or "store"
	pg   *pgtest.Server // pgtest
	// store: the URL given (CREATE and DROP DATABASE are sent there),
	// the password it holds (given to the relays in their environment,
	// not on their command lines) and the databases created.
	admin   string
	base    *url.URL
	pass    string
	created []string
}

// benchDatabase is one run's new database.
type benchDatabase struct {
	name     string
	dsn      string   // for this process
	relayDSN string   // for the relays: without the password, which is in env
	env      []string // PGPASSWORD for the relays, if any
}

func startBenchPostgres(storeURL string) (*benchPostgres, error) {
	if storeURL == "" {
		s, err := pgtest.Start(pgtest.Options{Durable: true})
		if err != nil {
			return nil, err
		}
		return &benchPostgres{kind: "pgtest", pg: s}, nil
	}
	pcfg, err := pgx.ParseConfig(storeURL)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	if !localPostgres(pcfg.Host) {
		return nil, errors.New("-store: wisp-bench only talks to loopback (or Unix socket) PostgreSQL servers")
	}
	for _, f := range pcfg.Fallbacks {
		if !localPostgres(f.Host) {
			return nil, errors.New("-store: wisp-bench only talks to loopback (or Unix socket) PostgreSQL servers")
		}
	}
	u, err := url.Parse(storeURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, errors.New("-store: give a postgres:// URL")
	}
	b := &benchPostgres{kind: "store", admin: storeURL, base: u}
	if p, ok := u.User.Password(); ok {
		b.pass = p
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if p := q.Get("password"); p != "" {
		b.pass = p
	}
	q.Del("password")
	q.Del("dbname")
	u.RawQuery = q.Encode()
	return b, nil
}

// localPostgres: host is a loopback address, localhost or a Unix socket
// directory.
func localPostgres(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// newDatabase creates an empty database.
func (b *benchPostgres) newDatabase() (*benchDatabase, error) {
	if b.pg != nil {
		dsn, err := b.pg.NewDatabase()
		if err != nil {
			return nil, err
		}
		pcfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		return &benchDatabase{name: pcfg.Database, dsn: dsn, relayDSN: dsn}, nil
	}
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("wisp_bench_%d_%s", len(b.created)+1, hex.EncodeToString(tag[:]))
	ctx, cancel := timeout(time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, b.admin)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("-store: creating a database for the benchmark (the role needs CREATEDB): %w", err)
	}
	b.created = append(b.created, name)
	u := *b.base
	u.Path, u.RawPath = "/"+name, ""
	db := &benchDatabase{name: name, relayDSN: u.String()}
	if b.pass != "" {
		db.env = []string{"PGPASSWORD=" + b.pass}
		u.User = url.UserPassword(u.User.Username(), b.pass)
	}
	db.dsn = u.String()
	pcfg, err := pgx.ParseConfig(db.dsn)
	if err != nil {
		return nil, fmt.Errorf("-store: the URL of database %s: %w", name, err)
	}
	if pcfg.Database != name {
		return nil, fmt.Errorf("-store: the URL made for database %s names %q", name, pcfg.Database)
	}
	return db, nil
}

// close stops the throwaway server, or drops the databases created on
// the -store one.
func (b *benchPostgres) close() {
	if b.pg != nil {
		b.pg.Stop()
		return
	}
	if len(b.created) == 0 {
		return
	}
	ctx, cancel := timeout(time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, b.admin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wisp-bench: databases %s not dropped: %v\n", strings.Join(b.created, ", "), err)
		return
	}
	defer c.Close(context.Background())
	for _, name := range b.created {
		if _, err := c.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			fmt.Fprintf(os.Stderr, "wisp-bench: database %s not dropped: %v\n", name, err)
		}
	}
}

// findPostmaster returns the PID of the PostgreSQL server holding db: the
// parent of the server process of a session on it (pg_backend_pid()),
// which must be a postgres process visible here (not on another machine
// or in another PID namespace).
func findPostmaster(db *benchDatabase) (int, error) {
	ctx, cancel := timeout(time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return 0, err
	}
	// Still connected: the session's process is there.
	st, err := readProcStat(pid)
	if err != nil || st.comm != "postgres" {
		return 0, fmt.Errorf("the server's session process %d is not a postgres process here (is the server on another machine or in another PID namespace?)", pid)
	}
	// Its title names the database, unless update_process_title is off.
	if title, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil &&
		strings.HasPrefix(string(title), "postgres: ") && !strings.Contains(string(title), " "+db.name+" ") {
		return 0, fmt.Errorf("process %d is not the session on database %s", pid, db.name)
	}
	pm, err := readProcStat(st.ppid)
	if err != nil || pm.comm != "postgres" && pm.comm != "postmaster" {
		return 0, fmt.Errorf("the parent of the server's session process %d is not a postmaster", pid)
	}
	return st.ppid, nil
}

// treeCPU returns the CPU time used by process root and every process
// under it: their user+system time and that of their children that
// ended and were waited for (a PostgreSQL server's sessions that ended
// are in the postmaster's).
func treeCPU(root int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := make(map[int]procStat, len(ents))
	kids := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // it ended meanwhile
		}
		stats[pid] = st
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("process %d has ended", root)
	}
	var sum time.Duration
	seen := make(map[int]bool, len(stats))
	todo := []int{root}
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		sum += stats[pid].cpu + stats[pid].children
		todo = append(todo, kids[pid]...)
	}
	return sum, nil
}
