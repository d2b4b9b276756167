// Package cluster holds the tests of one relay served by several
// wisp-relay processes that share a PostgreSQL store (-store) and a chunk
// folder (-files): delivery across processes, subscriptions moving
// between them, a process killed while messages flow, and a database
// outage. It has no code of its own; the tests build the binary and
// start a throwaway PostgreSQL (package pgtest).
package cluster
