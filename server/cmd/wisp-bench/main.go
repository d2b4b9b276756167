// Command wisp-bench measures a Wisp relay against a bare WebSocket
// baseline measured in the same run.
//
//	wisp-bench relay (-addr wisp://... | -spawn) [-proxy] [-lockstep] -conns 100 -queues 1000 -msgs 10 -size 16000
//	wisp-bench relay (-addr wisp://... | -spawn) [-rate-fraction 0.5,0.25] [-rate 400] -conns 100 -queues 1000 -msgs 10 -size 16000
//	wisp-bench relay -cluster [-store postgres://...] [-lockstep] -conns 100 -queues 1000 -msgs 10 -size 16000
//	wisp-bench idle  -spawn -conns 10000 [-workers 64] [-perf FILE]
//	wisp-bench start -queues 1000000 [-msg-every 100] [-size 1000] [-starts 5] [-data DIR] [-seed 1] [-workers 1024]
//	wisp-bench files (-addr wisp://... | -spawn) -size 104857600 -chunk 1048576 -inflight 4
//	wisp-bench flood (-addr wisp://... | -spawn) -attackers 3 -queues 16 -gets 9000 -duration 15s
//	wisp-bench drain (-addr wisp://... | -spawn) -conns 100 -queues 100000 -msgs 1 -size 1000
//
// relay: creates -queues queues over -conns connections (each connection
// receives on its share of the queues and sends to another connection's
// share), sends -msgs messages per queue end to end (SEND → OK → MSG →
// ACK), and reports messages/s, latency from SEND to MSG, and the relay's
// RSS. The baseline is a plain coder/websocket echo server, in its own
// process, driven with the same block size, connections and messages in
// flight.
//
// relay -lockstep: each queue's sender waits until its message was
// delivered and acknowledged before it sends the next, so that SEND→MSG
// is measured without queueing behind earlier messages (use it with few
// queues for latency; without it a sender waits only for OK).
//
// relay -rate R1,R2... and -rate-fraction F1,F2... add open-loop runs
// after the closed run above, whose msgs/s is the peak: at each rate
// given, then at each fraction of the peak (e.g. -rate-fraction 0.5 is
// 50 % of peak). Each creates its own -conns connections and -queues
// queues on the same relay and sends -queues × -msgs messages, the k-th
// scheduled at k/rate seconds after the first, to queue k%queues, each
// started on its own goroutine at its scheduled time whatever the
// earlier ones are doing (at most 65,536 at once). The latency is from
// the scheduled time to the MSG, so a SEND that starts late (the bench
// busy, or a slow relay) counts its wait: no coordinated omission. Each
// reports delivered msgs/s, SEND→MSG p50, p95, p99 and max, the send lag
// (how late wisp-bench started SENDs: a large one means the client could
// not keep the pace), and the relay's and wisp-bench's CPU seconds over
// the whole drive. They go neither with -lockstep nor with -cluster; the
// JSON lists them under "paced".
//
// relay -proxy measures private routing (wire SPEC.md §12): it also
// spawns a wisp-relay with -proxy-private as the senders' proxy (always a
// process, found like -spawn's); the senders are -conns more connections
// to it, each creating one queue there (which allows it to forward), and
// they SKEY and SEND with ProxySecure/ProxySend to the queues on the relay
// under test, where the recipients stay. The line after the table (in
// both modes: SEND→MSG p50, p95, p99) then adds the proxy's route reuse,
// 1 − routes opened/commands forwarded, read from its -metrics endpoint
// (SKEYs included), its CPU and RSS; with -spawn the relay under test
// serves -metrics too and its forwarded_in count is shown.
//
// relay -cluster compares stores in one run (implies -spawn; -conns
// must be even): (a) bbolt, one relay process, as without -cluster;
// (b) PostgreSQL, one process on a new database; (c) PostgreSQL, two
// processes on one new database with a shared temporary -files folder,
// connection i on process i%2, so that every queue's recipient
// (connection i%conns) and sender (the next connection) are on different
// processes and each message crosses LISTEN/NOTIFY; (d) the echo
// baseline. The PostgreSQL server is a throwaway one (server/internal/
// pgtest, fsync on) started first and removed at the end, or the loopback
// server of -store URL, where each run's database is created new (the
// URL's role needs CREATEDB) and dropped afterwards; nothing else there
// is written to or dropped. Each run reports msgs/s, SEND→MSG
// percentiles, the relay processes' CPU seconds summed and RSS summed,
// for (b) and (c) the CPU seconds of the PostgreSQL server (its
// postmaster and every process under it, found from the PID of a session
// on the run's database, pg_backend_pid(); with -store it includes
// whatever else that server did meanwhile), all over the whole drive
// (connections, NEW, SKEY, SUB, SEND, ACK), and msgs/s over the
// baseline's. The JSON's top-level figures are run (a)'s, and "runs"
// lists all three.
//
// idle: opens -conns connections that each create and subscribe one queue,
// then stay idle, and reports the relay's memory per connection next to
// the bare server holding as many idle connections. It also reports the
// connect phase: the wall time until all -conns sessions are connected
// (WebSocket and handshake), have a queue (NEW) and are subscribed (SUB),
// -workers sessions at a time, next to the time the bare server takes to
// accept as many WebSocket connections with as many at once; the CPU
// seconds of the server and of wisp-bench over each; and the per-session
// p50/p99 of dial+handshake, NEW and SUB. The recipient keys are generated
// before (each client makes its own on its own device). The default
// -workers 64 throttles the phase (sessions wait for each other's
// round trips): use about -workers 1024 for the connect time; on a small
// machine wisp-bench's own share of the CPU (its handshakes, 16 KiB
// blocks to seal and open) is then as large as the relay's, so compare
// the CPU seconds. -perf FILE records the relay with perf record -g
// (perf must be installed) during the relay's connect phase; read it
// with perf report -i FILE.
//
// start: the relay's start time with many queues stored. It fills a new
// data directory (-data DIR to keep it, default a temporary one) with
// -queues queues through the store package directly (server/relay/store,
// DIR/queues.db; thousands of queues a second, where NEW over the
// protocol makes about 1,100), one -size-byte message in every
// -msg-every-th queue (secured, as after SKEY and SEND), an empty chunk
// store (DIR/files/chunks.db) and an identity key, which is what
// wisp-relay finds when it restarts. Every queue's IDs, keys and message
// follow from -seed and its index. A -data DIR that already holds
// queues.db is reused (generated earlier with the same -queues,
// -msg-every, -size and -seed). It then starts wisp-relay once on it and
// verifies it: the relay's -metrics count every queue and message, a
// client subscribes to queues 0, queues/2, the last one and the last
// one with a message with their generated keys and receives their
// stored messages, and a queue not generated is refused (AUTH). Then it
// starts wisp-relay -starts times on each of: an empty store (created by
// a first start, so every start is a restart), the filled store, the
// filled store with -check-max-size 0 (no start-up consistency check),
// and on Linux the same two with queues.db evicted from the page cache
// first (posix_fadvise on that file only, as after a reboot), the rows
// interleaved, warm ones with the file read through first. Each start
// reports the time from exec to the "relay address:" line, to the first
// client session (WebSocket and handshake) and to exit after SIGTERM,
// and the relay's logged check time of queues.db; the table shows the
// median and max, the JSON every start.
//
// files: uploads -size bytes to the relay's file store in chunks of
// -chunk bytes (FNEW then FPUT each, -inflight at once on one connection),
// downloads them all (FGET) and checks them, then acknowledges them. It
// reports upload and download MB/s (10^6 bytes per second) next to a
// baseline: the same bytes moved up and then down as plain WebSocket
// messages, with as many in flight, to a bare coder/websocket server in
// its own process. ratio is relay_mb_per_s / baseline_mb_per_s (both
// directions together).
//
// flood: creates, for each of -attackers, -queues queues holding one
// 16,000-byte message each (each attacker from its own loopback address,
// 127.0.0.2 up, so the relay's NEW budget per address applies to each),
// then each attacker opens a raw session and writes -gets GETs cycling
// over its queues, in blocks sealed in advance, as fast as the relay takes
// them, and never reads. Meanwhile an honest client measures SEND→MSG
// round trips (SEND, wait for the MSG, ACK) on one subscribed queue for
// -duration. It reports the relay's RSS before the flood and its peak
// (sampled every 100 ms), the honest latencies, and when each attacker
// wrote all its GETs and when it was dropped by the relay (a write
// failed or its TCP connection left ESTABLISHED; -1: not within
// -duration).
//
// drain: a pass/fail check of a relay whose clients come back to many
// stored messages at once. Setup: creates -queues queues, queue i by
// recipient connection i%conns, each secured by a sender key on one of
// -senders sender connections, and sends -msgs messages of -size bytes to
// each (-workers queues at a time), each body unique (queue and message
// index first); a body is acknowledged when its SEND returned nil. The
// setup connections are then closed, so nothing is subscribed, and -conns
// new recipient connections each subscribe all their queues in one
// Subscribe call (as a reconnecting client does), receive the MSGs and
// ACK each. It reports the setup time, the SUB phase (every Subscribe
// returned), the drain time until every acknowledged body was received
// (and until every one was ACKed with OK), msgs/s, messages received,
// distinct bodies, duplicates (a body received again; "redelivered" are
// those with a message ID already received on the queue), disconnections
// of the recipient clients, SUB errors, and the relay's RSS and CPU over
// the drain. After -timeout it reports what is missing. The line before
// the JSON starts "drain PASS" or "drain FAIL: why"; it fails, and exits
// 1, when an acknowledged body was not delivered, on any disconnection
// or duplicate, on SEND or SUB errors, or on the timeout.
//
// -spawn starts wisp-relay (found next to this binary, on PATH, or given
// by -relay-bin) with a temporary data directory. RSS is read from
// /proc/<pid>/status, so it is only known for spawned processes (Linux).
// The last line of output is one JSON object with the results. Only
// loopback addresses are used; every loop is bounded.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "relay":
		err = runRelay(os.Args[2:])
	case "idle":
		err = runIdle(os.Args[2:])
	case "files":
		err = runFiles(os.Args[2:])
	case "flood":
		err = runFlood(os.Args[2:])
	case "drain":
		err = runDrain(os.Args[2:])
	case "start":
		err = runStart(os.Args[2:])
	case "bare-server":
		err = runBareServer()
	case "bare-files-server":
		err = runBareFilesServer()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wisp-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wisp-bench relay|idle|files|flood|drain|start [flags]   (wisp-bench relay -h for flags)")
	os.Exit(2)
}

// target is the relay under test.
type target struct {
	addr    string
	spawn   bool
	bin     string
	process *child
	// extra flags for a spawned relay (relay -proxy: its metrics).
	extra []string
}

func (t *target) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.addr, "addr", "", "relay address wisp://<keyhash>@127.0.0.1:port (a relay started separately)")
	fs.BoolVar(&t.spawn, "spawn", false, "start a relay with a temporary data directory")
	fs.StringVar(&t.bin, "relay-bin", "", "wisp-relay binary for -spawn (default: next to wisp-bench, then PATH)")
}

// start spawns the relay if asked and returns its address, which must
// be a loopback one.
func (t *target) start() (addr wire.Address, cleanup func(), err error) {
	cleanup, err = t.spawnRelay()
	if err != nil {
		return addr, nil, err
	}
	if addr, err = wire.ParseAddress(t.addr); err == nil && !addr.IsLoopback() {
		err = errors.New("wisp-bench only talks to loopback relays")
	}
	if err != nil {
		cleanup()
		return addr, nil, err
	}
	return addr, cleanup, nil
}

func (t *target) spawnRelay() (cleanup func(), err error) {
	if t.spawn == (t.addr != "") {
		return nil, errors.New("give exactly one of -addr and -spawn")
	}
	if !t.spawn {
		return func() {}, nil
	}
	bin, err := relayBin(t.bin)
	if err != nil {
		return nil, err
	}
	c, addr, cleanup, err := spawnRelayProcess(bin, nil, t.extra...)
	if err != nil {
		return nil, err
	}
	t.addr, t.process = addr, c
	return cleanup, nil
}

// relayBin returns the wisp-relay binary to spawn: given, else next to
// this binary, else on PATH.
func relayBin(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if self, err := os.Executable(); err == nil {
		if c := filepath.Join(filepath.Dir(self), "wisp-relay"); fileExists(c) {
			return c, nil
		}
	}
	bin, err := exec.LookPath("wisp-relay")
	if err != nil {
		return "", errors.New("wisp-relay not found: build it next to wisp-bench or pass -relay-bin")
	}
	return bin, nil
}

// spawnRelayProcess starts wisp-relay on a free loopback port with a
// temporary data directory, the extra flags and, beside this process's
// environment, the variables in env ("NAME=value"), and returns its
// address.
func spawnRelayProcess(bin string, env []string, extra ...string) (*child, string, func(), error) {
	dir, err := os.MkdirTemp("", "wisp-bench-relay-")
	if err != nil {
		return nil, "", nil, err
	}
	args := append([]string{"-listen", "127.0.0.1:0", "-data", dir,
		// A benchmark creates its queues from one address as fast as it can.
		"-new-per-minute", "1000000", "-new-per-addr", "0", "-new-per-relay", "0"}, extra...)
	c, line, err := startChild(env, bin, "relay address: ", args...)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return c, line, func() { c.stop(); _ = os.RemoveAll(dir) }, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// child is a spawned server process.
type child struct{ cmd *exec.Cmd }

// startChild starts a server, with env ("NAME=value") added to this
// process's environment, and waits for its line starting with prefix.
func startChild(env []string, bin, prefix string, args ...string) (*child, string, error) {
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &child{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		c.stop()
		return nil, "", fmt.Errorf("%s did not print %q: %q %v", bin, prefix, line, err)
	}
	return c, strings.TrimSpace(strings.TrimPrefix(line, prefix)), nil
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// rss returns the resident set size of the process, or 0 if unknown.
func (c *child) rss() int64 {
	if c == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpu returns the user+system CPU time the process has used, or 0.
func (c *child) cpu() time.Duration {
	if c == nil {
		return 0
	}
	st, err := readProcStat(c.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return st.cpu
}

// procStat is what /proc/<pid>/stat says about a process.
type procStat struct {
	comm string // command name (at most 15 bytes)
	ppid int
	// cpu is its user+system time; children is that of its children
	// that ended and were waited for (cutime+cstime).
	cpu, children time.Duration
}

// readProcStat reads /proc/<pid>/stat.
func readProcStat(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// "pid (comm) state ppid ...": the fields after the parenthesised
	// command name start with field 3; utime, stime, cutime and cstime
	// are fields 14 to 17 of the whole line, in clock ticks (100 per
	// second).
	i, j := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
	if i < 0 || j < i {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	st.comm = string(b[i+1 : j])
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 15 {
		return st, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var n [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} {
		if n[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return st, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	const tick = 10 * time.Millisecond
	st.ppid = int(n[0])
	st.cpu = time.Duration(n[1]+n[2]) * tick
	st.children = time.Duration(n[3]+n[4]) * tick
	return st, nil
}

// startBare starts this binary as a bare coder/websocket echo server.
func startBare() (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	return startChild(nil, self, "bare address: ", "bare-server")
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit (children inherit it).
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}

func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

func timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
