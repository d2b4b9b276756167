// Package pgtest starts a throwaway PostgreSQL server on loopback for
// tests: initdb into a temporary directory, postgres on a free 127.0.0.1
// port, run as an unprivileged user when the test runs as root.
//
// Start one server per test binary, in TestMain, and give each test its
// own database:
//
//	var pg pgtest.Env
//
//	func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
//
//	func TestX(t *testing.T) {
//		dsn := pg.Database(t) // skips the test loudly without PostgreSQL
//		...
//	}
//
// The binaries are taken from $PATH, else from the newest
// /usr/lib/postgresql/*/bin (Debian's postgresql package; `make test`
// installs it when it runs as root). When none is found, Main logs why
// and the tests that need PostgreSQL skip with that message.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable: no PostgreSQL binaries on this machine.
var ErrUnavailable = errors.New("pgtest: PostgreSQL is not installed (apt-get install -y postgresql)")

// Server is a running throwaway PostgreSQL.
type Server struct {
	bin  string
	dir  string
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
	n    int
}

// Options of Start.
type Options struct {
	// Durable keeps fsync on (benchmarks). Tests run without it: a
	// killed postgres process still loses no committed transaction (the
	// WAL is in the page cache, synchronous_commit stays on), and what
	// they check is the relay, not PostgreSQL surviving a power cut.
	Durable bool
}

// Env is one test binary's server, or why there is none.
type Env struct {
	Server *Server
	why    string
}

// Main starts the server (or records why it cannot, logging it loudly),
// runs the tests and stops it.
func (e *Env) Main(m *testing.M) int {
	s, err := Start(Options{})
	if err != nil {
		e.why = err.Error()
		fmt.Fprintf(os.Stderr, "\n*** pgtest: PostgreSQL tests will be SKIPPED: %v ***\n\n", err)
	} else {
		e.Server = s
		defer s.Stop()
	}
	return m.Run()
}

// Database returns the URL of a new empty database for t; it skips t
// (loudly, with the reason) when there is no server and fails it when
// the database cannot be made.
func (e *Env) Database(t testing.TB) string {
	t.Helper()
	if e.Server == nil {
		t.Skipf("SKIPPED, no PostgreSQL: %s", e.why)
	}
	dsn, err := e.Server.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func findBin() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrUnavailable
}

// Start runs initdb into a new temporary directory and starts postgres.
func Start(opts Options) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wisp-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		name := "postgres"
		u, err := user.Lookup(name)
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			return nil, fmt.Errorf("pgtest: no unprivileged user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	out, err := s.command("initdb", "-D", data, "-U", "wisp", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w: %s", err, out)
	}
	conf := "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 300\nshared_buffers = 128MB\n"
	if !opts.Durable {
		conf += "fsync = off\nfull_page_writes = off\n"
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: postgresql.conf: %w", err)
	}
	for range 5 {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.Restart(); err == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, err
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart starts postgres again after Kill (or for the first time) on
// the same port and data, and waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := s.command("postgres", "-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(s.port))
	log, err := os.Create(filepath.Join(s.dir, "log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exit) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			s.cmd, s.exit = cmd, exit
			return nil
		}
		select {
		case <-exit:
			b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			return fmt.Errorf("pgtest: postgres exited: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exit
			return fmt.Errorf("pgtest: postgres did not accept connections: %w", err)
		}
	}
}

// Kill stops postgres at once (SIGQUIT: immediate shutdown, no
// checkpoint), as an outage; Restart brings it back.
func (s *Server) Kill() { s.signal(syscall.SIGQUIT) }

// Stop stops postgres (SIGINT: fast shutdown) and removes its directory.
func (s *Server) Stop() {
	s.signal(syscall.SIGINT)
	_ = os.RemoveAll(s.dir)
}

// signal stops the running postgres with sig, or SIGKILL after 30 s.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://wisp@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database and returns its connection URL.
func (s *Server) NewDatabase() (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("wisp_%d_%d", os.Getpid(), s.n)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.dsn(name), nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// LogTail returns the end of the server's log, for failure messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}
