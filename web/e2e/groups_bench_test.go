//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/hack-pad/hackpadfs/mem"
	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/wasm/chat"
)

// nativeMember is a group member run by the test process itself: the
// core's Go packages (wasm/chat) on in-memory storage, as a browser would
// run them in its worker.
type nativeMember struct {
	name string
	m    *chat.Manager
	p    *chat.Profile
	gid  string // the chat entry of the group
}

// newNativeMember creates and unlocks a profile named name in a Manager of
// its own, for the app at base, receiving on relays[0].
func newNativeMember(tb testing.TB, name, base string, relays []string) *nativeMember {
	tb.Helper()
	fsys, err := mem.NewFS()
	if err != nil {
		tb.Fatal(err)
	}
	n := &nativeMember{name: name, m: chat.NewManager(fsys, chat.Config{Origin: base, PresetRelays: relays,
		Argon2: vault.Params{MemoryKiB: 1024, Time: 1, Threads: 1}})}
	tb.Cleanup(n.m.Close)
	ctx := opCtx(tb)
	id, err := n.m.CreateProfile(ctx, chat.NewProfile{DisplayName: name})
	if err != nil {
		tb.Fatal(err)
	}
	if n.p, err = n.m.Unlock(ctx, id, "", func(chat.Event) {}); err != nil {
		tb.Fatal(err)
	}
	return n
}

// opCtx bounds one native call.
func opCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// waitNative polls cond every 20 ms for up to 3 minutes.
func waitNative(tb testing.TB, what string, cond func() (bool, error)) {
	tb.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		ok, err := cond()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitContact waits until n's contact id is connected.
func (n *nativeMember) waitContact(tb testing.TB, id string) {
	tb.Helper()
	waitNative(tb, n.name+"'s contact connected", func() (bool, error) {
		c, err := n.p.Contact(id)
		return c.State == chat.ContactConnected, err
	})
}

// joinedConnected reports how many members n sees joined, each connected
// pairwise with n (or n itself), and whether name is among them.
func (n *nativeMember) joinedConnected(name string) (count int, has bool, err error) {
	ms, err := n.p.Members(n.gid)
	for _, m := range ms {
		if m.Status == "joined" && (m.Connection == "self" || m.Connection == "connected") {
			count++
			has = has || m.Name == name
		}
	}
	return count, has, err
}

// joinNative has n accept the invitation to the group named group.
func (n *nativeMember) joinNative(tb testing.TB, group string) {
	tb.Helper()
	waitNative(tb, n.name+"'s invitation", func() (bool, error) {
		cs, err := n.p.Contacts()
		for _, c := range cs {
			if c.Group != nil && c.Group.State == chat.GroupInvited && c.Group.Profile.Name == group {
				n.gid = c.ID
				return true, nil
			}
		}
		return false, err
	})
	if err := n.p.JoinGroup(opCtx(tb), n.gid, false); err != nil {
		tb.Fatal(err)
	}
}

// waitMembersWithin is waitMembers with its own deadline.
func (p *tab) waitMembersWithin(n int, timeout time.Duration) {
	p.t.Helper()
	if !eval[bool](p, `document.querySelector("#members-panel") !== null`) {
		p.click("Members")
	}
	p.waitVisible("#members-panel")
	p.waitJS(fmt.Sprintf(`(() => { const li = [...document.querySelectorAll("#member-list li")];
		return li.length === %d && li.every(e => e.dataset.status === "joined" && (e.dataset.connection === "self" || e.dataset.connection === "connected")) })()`, n),
		timeout, fmt.Sprintf("%d members, all connected", n))
}

// benchGroup is the name of BenchmarkGroupSend's group.
const benchGroup = "Twenty"

// statusProbe keeps, for each benchmark message, the members the core
// last reported it delivered to (the worker's "status" events), so that a
// failure can name the members whose receipts did not count.
const statusProbe = `(() => {
	const W = window.Worker;
	window.Worker = class extends W {
		constructor(...args) {
			super(...args);
			this.addEventListener("message", (e) => {
				if (e.data?.type !== "event" || !e.data.data.includes("to the twenty")) return;
				const m = JSON.parse(e.data.data).message;
				if (m && !m.incoming) (window.__delivered ??= {})[m.text] = m.delivered_to ?? [];
			});
		}
	};
})()`

// benchProbe records, in the page, when Enter is pressed in the composer
// and every long task (Chromium reports those of 50 ms and more).
const benchProbe = `(() => {
	window.__bench = { longtasks: [], t0: 0 };
	new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]); })
		.observe({ type: "longtask" });
	window.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target.id === "composer") window.__bench.t0 = performance.now(); }, true);
	return PerformanceObserver.supportedEntryTypes.includes("longtask");
})()`

// benchWatch watches the page for the outgoing message text: when its
// status first leaves "Sending…", first reads "Delivered to" one or more,
// and reads "Delivered to n of n".
const benchWatch = `((text, n) => {
	const B = window.__bench;
	B.mo?.disconnect();
	Object.assign(B, { t0: 0, sent: 0, first: 0, done: 0 });
	const all = " · Delivered to " + n + " of " + n;
	const check = () => {
		const li = [...document.querySelectorAll("#messages .msg.out")].findLast((li) => li.querySelector(".text")?.textContent === text);
		const s = li?.querySelector(".status")?.textContent;
		if (!s || !B.t0) return;
		const now = performance.now();
		if (!B.sent && s !== " · Sending…") B.sent = now;
		if (!B.first && /^ · Delivered to [1-9]/.test(s)) B.first = now;
		if (s === all) { B.done = now; B.mo.disconnect(); }
	};
	B.mo = new MutationObserver(check);
	B.mo.observe(document.body, { childList: true, subtree: true, characterData: true });
	return true;
})(%q, %d)`

// benchResult reads one message's figures (ms after Enter) and the
// longest task that overlapped [Enter, delivered to all].
const benchResult = `(() => {
	const B = window.__bench;
	const during = B.longtasks.filter(([start, d]) => start < B.done && start + d > B.t0).map(([, d]) => d);
	return { sent: B.sent - B.t0, first: B.first - B.t0, done: B.done - B.t0, longest: Math.max(0, ...during), count: during.length };
})()`

// benchState describes, after a failure, where the message text is: the
// page's status line and each native member's copy.
func benchState(tb testing.TB, page *tab, natives []*nativeMember, text string) string {
	var out strings.Builder
	fmt.Fprintf(&out, "page: %s\n", eval[string](page, fmt.Sprintf(`JSON.stringify({ bench: { ...window.__bench, longtasks: undefined, mo: undefined },
		status: [...document.querySelectorAll("#messages .msg.out")].findLast((li) => li.querySelector(".text")?.textContent === %q)?.querySelector(".status")?.textContent ?? "(no such message)" })`, text)))
	delivered := eval[[]string](page, fmt.Sprintf(`window.__delivered?.[%q] ?? []`, text))
	ms, err := natives[0].p.Members(natives[0].gid)
	if err != nil {
		tb.Fatal(err)
	}
	// The core sends the copies in the order of member IDs.
	slices.SortFunc(ms, func(a, b chat.Member) int { return strings.Compare(a.ID, b.ID) })
	var order, missing []string
	for _, m := range ms {
		if m.Name == "Page" {
			continue
		}
		order = append(order, m.Name)
		if !slices.Contains(delivered, m.ID) {
			missing = append(missing, m.Name)
		}
	}
	fmt.Fprintf(&out, "the core counted %d receipts; none counted from %s (copies are sent in this order: %s)\n",
		len(delivered), strings.Join(missing, ", "), strings.Join(order, ", "))
	stored := 0
	for _, n := range natives {
		msgs, err := n.p.Messages(n.gid, 0, 10)
		if err != nil || !slices.ContainsFunc(msgs, func(m chat.Message) bool { return m.Text == text }) {
			fmt.Fprintf(&out, "%s does not have the message (%v)\n", n.name, err)
			continue
		}
		stored++
	}
	fmt.Fprintf(&out, "%d of the %d members stored the message\n", stored, len(natives))
	// What the core stored, as a reload shows it.
	page.run(chromedp.Reload())
	page.waitVisible("#app")
	page.openContact(benchGroup)
	page.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 60*time.Second, "the history after a reload")
	fmt.Fprintf(&out, "after a reload the page shows: %s\n", eval[string](page, fmt.Sprintf(`[...document.querySelectorAll("#messages .msg.out")].findLast((li) => li.querySelector(".text")?.textContent === %q)?.querySelector(".status")?.textContent ?? "(no such message)"`, text)))
	return out.String()
}

type benchFigures struct {
	Sent    float64 `json:"sent"`
	First   float64 `json:"first"`
	Done    float64 `json:"done"`
	Longest float64 `json:"longest"`
	Count   int     `json:"count"`
}

// BenchmarkGroupSend: a group of 20 — the page and 19 members run in the
// test process (wasm/chat natively, each with its own in-memory storage),
// on two relays. A native member creates the group and invites the 18
// others and then the page's profile, which joins in the UI. For each
// message typed in the page it reports the time from Enter until the page
// shows "Delivered to 19 of 19" (mean and worst), until the status leaves
// "Sending…" and until the first delivery, and the longest main-thread
// task in the page meanwhile (0 when none reached Chromium's 50 ms
// long-task threshold). A message still short of "Delivered to 19 of 19"
// after 90 s fails the benchmark, naming the members whose receipts the
// core did not count. ns/op includes a 300 ms pause after each message
// (for the long-task entries); the figures above are the ones to read.
// Run: make build && WISP_ROOT=$PWD go test -tags e2e -run '^$' -bench GroupSend -benchtime 5x ./web/e2e/
func BenchmarkGroupSend(b *testing.B) {
	const others = 19
	_, relayA := startRelay(b)
	_, relayB := startRelay(b)
	_, base := startHost(b, "-relay", relayA, "-relay", relayB)

	setup := time.Now()
	natives := make([]*nativeMember, others)
	for i := range natives {
		relays := []string{relayA, relayB}
		if i%2 == 1 {
			relays = []string{relayB, relayA}
		}
		natives[i] = newNativeMember(b, fmt.Sprintf("N%02d", i+1), base, relays)
	}
	owner := natives[0]
	c, err := owner.p.CreateGroup(opCtx(b), chat.GroupProfile{Name: benchGroup}, false)
	if err != nil {
		b.Fatal(err)
	}
	owner.gid = c.ID
	// One newcomer at a time, each once the owner has their "joined".
	for _, n := range natives[1:] {
		inv, err := owner.p.CreateInvitation(opCtx(b), false)
		if err != nil {
			b.Fatal(err)
		}
		joined, err := n.p.Join(opCtx(b), inv.Link, false)
		if err != nil {
			b.Fatal(err)
		}
		owner.waitContact(b, inv.Contact)
		n.waitContact(b, joined.ID)
		if err := owner.p.InviteToGroup(opCtx(b), owner.gid, inv.Contact, chat.RoleMember); err != nil {
			b.Fatal(err)
		}
		n.joinNative(b, benchGroup)
		waitNative(b, "the owner has "+n.name+" joined", func() (bool, error) {
			_, has, err := owner.joinedConnected(n.name)
			return has, err
		})
	}
	for _, n := range natives {
		waitNative(b, n.name+" sees 19 members connected", func() (bool, error) {
			count, _, err := n.joinedConnected("")
			return count == others, err
		})
	}
	b.Logf("19 native members in a group in %v", time.Since(setup).Round(time.Millisecond))

	// The page connects with the owner through a link the owner made, and
	// joins when invited.
	setup = time.Now()
	page := newPerson(b, "page")
	if _, err := chromedp.Call(page.ctx, cdppage.AddScriptToEvaluateOnNewDocument,
		cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: statusProbe}); err != nil {
		b.Fatal(err)
	}
	page.run(chromedp.Navigate(base + "/"))
	page.createProfile("Page", "")
	inv, err := owner.p.CreateInvitation(opCtx(b), false)
	if err != nil {
		b.Fatal(err)
	}
	page.click("I have a link")
	page.fill("Invitation link", inv.Link)
	page.click("Connect")
	page.waitJS(fmt.Sprintf(`document.querySelector("#conv-title")?.textContent === %q && document.querySelector("#conv-state")?.textContent === "connected"`, owner.name), 60*time.Second, "the page connected with "+owner.name)
	owner.waitContact(b, inv.Contact)
	if err := owner.p.InviteToGroup(opCtx(b), owner.gid, inv.Contact, chat.RoleMember); err != nil {
		b.Fatal(err)
	}
	page.acceptGroupInvitation(b, owner.name, benchGroup)
	// Its history shown before the members panel replaces it.
	page.waitJS(`document.querySelector("#messages")?.dataset.loaded === "true"`, 60*time.Second, "the group's history")
	page.waitMembersWithin(others+1, 4*time.Minute)
	for _, n := range natives {
		waitNative(b, n.name+" sees the page connected", func() (bool, error) {
			count, has, err := n.joinedConnected("Page")
			return has && count == others+1, err
		})
	}
	page.click("‹ Conversation")
	page.waitVisible("#composer")
	b.Logf("the page joined, connected with all 19, in %v", time.Since(setup).Round(time.Millisecond))
	if !eval[bool](page, benchProbe) {
		b.Log("this Chromium does not report long tasks")
	}

	var results []benchFigures
	for b.Loop() {
		text := fmt.Sprintf("Message %d to the twenty", len(results)+1)
		eval[bool](page, fmt.Sprintf(benchWatch, text, others))
		page.send(text)
		if _, err := chromedp.Run(page.ctx, chromedp.Poll[bool](`window.__bench.done > 0`,
			chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			b.Fatalf("waiting for %q to be delivered to %d of %d: %v\n%s\nconsole:\n%s", text, others, others, err, benchState(b, page, natives, text), page.console())
		}
		time.Sleep(300 * time.Millisecond) // long-task entries are reported after their task
		r := eval[benchFigures](page, benchResult)
		b.Logf("%s: left Sending… after %.0f ms, first delivery %.0f ms, delivered to all %.0f ms; %d long task(s), longest %.0f ms",
			text, r.Sent, r.First, r.Done, r.Count, r.Longest)
		results = append(results, r)
	}
	var sent, first, done, worst, longest float64
	for _, r := range results {
		sent += r.Sent
		first += r.First
		done += r.Done
		worst = math.Max(worst, r.Done)
		longest = math.Max(longest, r.Longest)
	}
	n := float64(len(results))
	b.ReportMetric(done/n, "delivered-ms")
	b.ReportMetric(worst, "delivered-max-ms")
	b.ReportMetric(first/n, "first-delivery-ms")
	b.ReportMetric(sent/n, "sent-ms")
	b.ReportMetric(longest, "longest-task-ms")
	if !slices.ContainsFunc(results, func(r benchFigures) bool { return r.Count > 0 }) {
		b.Log("longest main-thread task: none ≥ 50 ms")
	}
}
