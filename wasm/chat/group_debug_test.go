//go:build !js

package chat

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// dumpGroup logs, for a failed group test, each member's messages,
// problems, roster and pair states (never keys or seeds).
func dumpGroup(t testing.TB, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		t.Logf("%s: %q", m.name, texts(t, m))
		for _, p := range problems(m.u) {
			t.Logf("%s problem: %s", m.name, p)
		}
		m.u.p.mu.Lock()
		g, err := m.u.p.loadGroup(m.gid)
		var queue int
		if keys, err := m.u.p.st.List(queueDir(m.gid)); err == nil {
			queue = len(keys)
		}
		m.u.p.mu.Unlock()
		if err != nil {
			t.Logf("%s group: %v", m.name, err)
			continue
		}
		var lines []string
		for id, it := range g.Roster.Members {
			line := fmt.Sprintf("%s/%s/%s", it.Name, it.Role, it.Status)
			if ps := g.Peers[id]; ps != nil {
				line += fmt.Sprintf(" link=%q start=%d expect=%d buffered=%d", ps.Link, ps.Start, ps.Expect, ps.Buffered)
			}
			lines = append(lines, line)
		}
		sort.Strings(lines)
		t.Logf("%s group %s, next %d, %d queued: %s", m.name, g.State, g.Next, queue, strings.Join(lines, "; "))
	}
}
