package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var pg Env

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// TestKillAndRestart: a database outlives an outage of its server.
func TestKillAndRestart(t *testing.T) {
	dsn := pg.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	pg.Server.Kill()
	if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a query succeeded while the server was down")
	}
	if err := pg.Server.Restart(); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	var v int
	if err := c2.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
}
