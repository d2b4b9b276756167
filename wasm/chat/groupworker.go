package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// The group worker does what must not happen inside an agent callback
// (which holds the connection's lock) or under p.mu: sending the queued
// wrappers, making and joining one-time links for introductions, and
// deleting connections. Everything it does is recorded first, so after a
// crash it picks up where it was; a wrapper sent twice is dropped by the
// receiver.

// groupRetry is how often held work is tried again.
const groupRetry = 2 * time.Second

// loadGroupConns reads which agent connections belong to groups, and
// which groups have work left.
func (p *Profile) loadGroupConns() error {
	keys, err := p.st.List("gc")
	if err != nil {
		return err
	}
	for _, k := range keys {
		var gc groupConn
		if err := getJSON(p.st, k, &gc); err != nil {
			return err
		}
		p.gconns[agent.ConnID(k.Base())] = gc
		p.gwork[gc.Group] = true
	}
	return nil
}

// groupConnOf tells whether an agent connection belongs to a group.
func (p *Profile) groupConnOf(conn agent.ConnID) (groupConn, bool) {
	lookup := func() (groupConn, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		gc, ok := p.gconns[conn]
		return gc, ok
	}
	if gc, ok := lookup(); ok {
		return gc, true
	}
	// Perhaps a connection a group join is about to record: wait for the
	// joins in flight, then look again.
	p.linking.Lock()
	defer p.linking.Unlock()
	return lookup()
}

func (p *Profile) startGroups() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.mu.Lock()
	p.gstop = func() { cancel(); <-done }
	p.mu.Unlock()
	go func() {
		defer close(done)
		p.groupWorker(ctx)
	}()
}

func (p *Profile) stopGroups() {
	p.mu.Lock()
	stop := p.gstop
	p.gstop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// pokeGroups marks a group as having work; p.mu held.
func (p *Profile) pokeGroups(id string) {
	p.gwork[id] = true
	select {
	case p.gwake <- struct{}{}:
	default:
	}
}

func (p *Profile) groupWorker(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.gwake:
		case <-t.C:
		}
		p.mu.Lock()
		ids := make([]string, 0, len(p.gwork))
		for id := range p.gwork {
			ids = append(ids, id)
		}
		clear(p.gwork)
		p.mu.Unlock()
		held := false
		for _, id := range ids {
			more, err := p.runGroup(ctx, id)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, ErrNoGroup) {
				p.groupProblem("group work failed, will retry: %v", err)
				more = true
			}
			if more {
				held = true
				p.mu.Lock()
				p.gwork[id] = true
				p.mu.Unlock()
			}
		}
		if held {
			t.Reset(groupRetry)
		}
	}
}

// runGroup does a group's pending work; more reports work left to retry.
func (p *Profile) runGroup(ctx context.Context, id string) (more bool, err error) {
	m1, err := p.groupLinks(ctx, id)
	if err != nil {
		return true, err
	}
	m2, err := p.sendQueue(ctx, id)
	if err != nil {
		return true, err
	}
	m3, err := p.groupDrops(ctx, id)
	if err != nil {
		return true, err
	}
	m4, err := p.sweepFiles(ctx, id)
	return m1 || m2 || m3 || m4, err
}

// groupLinks makes the one-time links introductions asked us for, and
// joins the links introducers passed us.
func (p *Profile) groupLinks(ctx context.Context, id string) (bool, error) {
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	type task struct {
		m    memberID
		link string
	}
	var tasks []task
	for m, ps := range g.Peers {
		if ps.Conn != "" || ps.Drop || (!ps.MakeLink && ps.JoinLink == "") {
			continue
		}
		it := g.Roster.Members[m]
		if it == nil || !it.active() {
			continue // not (yet) in the group as we know it
		}
		if ps.MakeLink && (it.AddedBy != ps.IntroBy || !bytes.Equal(it.Key, ps.IntroKey)) {
			p.groupProblem("an introduction that does not match the group was dropped")
			ps.MakeLink = false
			continue
		}
		tasks = append(tasks, task{m, ps.JoinLink})
	}
	info, err := json.Marshal(joinInfo{Group: g.Roster.ID, ID: g.Me})
	active := g.State == GroupActive
	p.mu.Unlock()
	if err != nil || !active || len(tasks) == 0 {
		return false, err
	}
	if p.holdLinks.Load() {
		return true, nil
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return true, err
	}
	more := false
	for _, t := range tasks {
		var conn agent.ConnID
		var link string
		if t.link == "" {
			var inv agent.Invitation
			if conn, inv, err = p.ag.CreateInvitation(ctx, relay, info); err == nil {
				link, err = inv.Link(p.m.cfg.Origin)
			}
		} else {
			var inv agent.Invitation
			if inv, err = agent.ParseLink(t.link, agent.Versions); err == nil {
				if err = p.m.CheckRelay(inv.Relay); err == nil {
					p.linking.RLock()
					conn, err = p.ag.Join(ctx, inv, relay, info)
					if err == nil {
						err = p.linked(id, t.m, conn, "")
					}
					p.linking.RUnlock()
					if err == nil {
						continue
					}
				}
			}
			if errors.Is(err, agent.ErrInvitationUsed) || errors.Is(err, agent.ErrLocalRelay) || errors.Is(err, agent.ErrCorruptedLink) {
				p.groupProblem("a group connection could not be made: %v", err)
				p.mu.Lock()
				if g, gerr := p.loadGroup(id); gerr == nil {
					g.peer(t.m).JoinLink = ""
					_ = p.saveGroup(id, g)
				}
				p.mu.Unlock()
				continue
			}
		}
		if err != nil {
			more = true
			continue
		}
		if err := p.linked(id, t.m, conn, link); err != nil {
			return true, err
		}
	}
	return more, nil
}

// linked records a connection made for a member.
func (p *Profile) linked(id string, m memberID, conn agent.ConnID, link string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return err
	}
	p.gconns[conn] = groupConn{Group: id, Member: m}
	if err := putJSON(p.st, gconnKey(conn), groupConn{Group: id, Member: m}); err != nil {
		return err
	}
	ps := g.peer(m)
	ps.Conn = conn
	if link != "" {
		ps.Link, ps.MakeLink = "invited", false
		mm := m
		if err := p.enqueue(id, g, &groupWire{T: wIntroInv, Group: g.Roster.ID, For: &mm, Link: link, Start: ps.Start}, []memberID{ps.IntroBy}, 0); err != nil {
			return err
		}
	} else {
		ps.Link, ps.JoinLink = "joined", ""
	}
	return p.saveGroup(id, g)
}

// sendPlan is one send the worker makes outside p.mu.
type sendPlan struct {
	entry store.Key
	to    memberID
	conn  agent.ConnID
	body  []byte
	pos   uint64 // a direct copy of a shown message: track its status
}

// sendQueue sends what can be sent of the queue, in order per member.
func (p *Profile) sendQueue(ctx context.Context, id string) (bool, error) {
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	keys, err := p.st.List(queueDir(id))
	if err != nil {
		p.mu.Unlock()
		return true, err
	}
	blocked := map[memberID]bool{}
	var plans []sendPlan
	entries := map[store.Key]*queued{}
	for _, k := range keys {
		var q queued
		if err := getJSON(p.st, k, &q); err != nil {
			p.mu.Unlock()
			return true, err
		}
		entries[k] = &q
		for _, m := range q.To {
			if blocked[m] {
				continue
			}
			plan, ok, err := g.route(k, &q, m)
			if err != nil {
				p.mu.Unlock()
				return true, err
			}
			if !ok {
				blocked[m] = true
				continue
			}
			plans = append(plans, plan)
		}
	}
	p.mu.Unlock()
	// Send, then record per entry which members are done.
	done := map[store.Key]map[memberID]bool{}
	type sentCopy struct {
		conn    agent.ConnID
		agentID uint64
		pos     uint64
	}
	var copies []sentCopy
	failed := map[memberID]bool{}
	for _, pl := range plans {
		if failed[pl.to] {
			continue
		}
		if pl.conn != "" {
			agentID, err := p.ag.Send(ctx, pl.conn, pl.body)
			if err != nil && !errors.Is(err, agent.ErrNoConnection) {
				failed[pl.to] = true // keep the order: nothing more to them now
				continue
			}
			if err == nil && pl.pos > 0 {
				copies = append(copies, sentCopy{pl.conn, agentID, pl.pos})
			}
		}
		if done[pl.entry] == nil {
			done[pl.entry] = map[memberID]bool{}
		}
		done[pl.entry][pl.to] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range copies {
		if err := putJSON(p.st, groupOutKey(id, c.conn, c.agentID), c.pos); err != nil {
			return true, err
		}
		if u, ok := p.early[string(c.conn)][c.agentID]; ok {
			delete(p.early[string(c.conn)], c.agentID)
			if gc, ok := p.gconns[c.conn]; ok {
				p.markGroupStatus(id, c.pos, gc.Member, u.status)
			}
		}
	}
	left := false
	for _, k := range keys {
		q := entries[k]
		var rest []memberID
		for _, m := range q.To {
			if !done[k][m] {
				rest = append(rest, m)
			}
		}
		switch {
		case len(rest) == 0:
			if err := p.st.Delete(k); err != nil {
				return true, err
			}
		case len(rest) < len(q.To):
			q.To = rest
			if err := putJSON(p.st, k, q); err != nil {
				return true, err
			}
			left = true
		default:
			left = true
		}
	}
	return left || len(failed) > 0, nil
}

// route decides how a queued wrapper reaches a member: ok=false holds it
// (and everything after it for that member) for later; a plan with no
// connection drops it (the member is gone).
func (g *groupRecord) route(k store.Key, q *queued, m memberID) (sendPlan, bool, error) {
	plan := sendPlan{entry: k, to: m}
	it := g.Roster.Members[m]
	final := false
	for _, f := range q.Final {
		final = final || f == m
	}
	if it == nil || (!it.active() && !final) || (g.Peers[m] != nil && g.Peers[m].Dropped) {
		return plan, true, nil // gone: drop
	}
	body := q.Wire
	if d, ok := q.Descs[m]; ok {
		w, err := decodeGroupWire(q.Wire)
		if err != nil {
			return plan, false, err
		}
		w.Desc = d
		if body, err = w.encode(); err != nil {
			return plan, false, err
		}
	}
	if ps := g.Peers[m]; ps.canSend() {
		plan.conn, plan.body = ps.Conn, withStart(body, ps.Start)
		plan.pos = q.Pos
		return plan, true, nil
	}
	if q.Direct {
		return plan, false, nil
	}
	ps := g.Peers[m]
	if ps == nil {
		return plan, false, nil
	}
	vs := g.Peers[ps.Via]
	if ps.Via == g.Me || !vs.canSend() {
		return plan, false, nil
	}
	to := m
	inner := withStart(body, ps.Start)[1:]
	fwd, err := (&groupWire{T: wFwd, Group: g.Roster.ID, To: &to, Inner: inner}).encode()
	if err != nil {
		return plan, false, err
	}
	plan.conn, plan.body = vs.Conn, fwd
	return plan, true, nil
}

// withStart sets Start on our own live events (the receiver's first
// expected seq from us).
func withStart(body []byte, start uint64) []byte {
	w, err := decodeGroupWire(body)
	if err != nil || w.T != wEv || start == 0 {
		return body
	}
	w.Start = start
	b, err := w.encode()
	if err != nil {
		return body
	}
	return b
}

// groupDrops deletes the connections of members who are gone, once what
// we queued for them is out, and our invitations of a group that ended.
func (p *Profile) groupDrops(ctx context.Context, id string) (bool, error) {
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	keys, err := p.st.List(queueDir(id))
	if err != nil {
		p.mu.Unlock()
		return true, err
	}
	waiting := map[memberID]bool{}
	for _, k := range keys {
		var q queued
		if err := getJSON(p.st, k, &q); err != nil {
			p.mu.Unlock()
			return true, err
		}
		for _, m := range q.To {
			waiting[m] = true
		}
	}
	var drops []agent.ConnID
	var members []memberID
	for m, ps := range g.Peers {
		if ps.Drop && !ps.Dropped && !waiting[m] {
			if ps.Conn == "" {
				ps.Dropped = true
				continue
			}
			drops = append(drops, ps.Conn)
			members = append(members, m)
		}
	}
	cancel := append([]agent.ConnID(nil), g.Cancel...)
	if err := p.saveGroup(id, g); err != nil {
		p.mu.Unlock()
		return true, err
	}
	p.mu.Unlock()
	more := false
	var gone []agent.ConnID
	for i, conn := range drops {
		if pending, err := p.ag.Pending(conn); err == nil && len(pending) > 0 {
			more = true // still going out
			continue
		}
		if err := p.ag.Delete(ctx, conn); err != nil && !errors.Is(err, agent.ErrNoConnection) {
			more = true
			continue
		}
		gone = append(gone, conn)
		_ = members[i]
	}
	for _, conn := range cancel {
		if err := p.ag.Delete(ctx, conn); err != nil && !errors.Is(err, agent.ErrNoConnection) {
			more = true
			continue
		}
		gone = append(gone, conn)
	}
	if len(gone) == 0 {
		return more, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err = p.loadGroup(id)
	if err != nil {
		return false, err
	}
	for _, conn := range gone {
		delete(p.gconns, conn)
		if err := p.st.Delete(gconnKey(conn)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return true, err
		}
		for _, ps := range g.Peers {
			if ps.Conn == conn {
				ps.Dropped = true
			}
		}
		for i, c := range g.Cancel {
			if c == conn {
				g.Cancel = append(g.Cancel[:i], g.Cancel[i+1:]...)
				break
			}
		}
	}
	return more, p.saveGroup(id, g)
}

// repairGroups finishes, after a crash, our events whose record of the
// group was not saved: author writes the event's log entry and queue entry
// before the group record (its Next), so an event in the log at or past
// Next was signed but maybe not queued, shown or applied. It is queued
// again (a receiver drops a copy it has), shown and applied, and Next
// moves past it, so a seq is never signed twice.
func (p *Profile) repairGroups() error {
	all, err := p.st.ListDirs("c")
	if err != nil {
		return err
	}
	// The chats that are groups, found in one read (most chats are not,
	// and a lookup of a missing record is a transaction of its own).
	var ids []string
	var keys []store.Key
	for _, d := range all {
		if validContactID(d.Base()) {
			ids, keys = append(ids, d.Base()), append(keys, groupKey(d.Base()))
		}
	}
	recs, err := p.st.GetMany(keys)
	if err != nil {
		return err
	}
	var dirs []store.Key
	for i, r := range recs {
		if r != nil {
			dirs = append(dirs, contactDir(ids[i]))
		}
	}
	// Who joined our open invitations (an admission a crash cut short is
	// finished with it). Read before p.mu: the agent takes its own locks.
	p.mu.Lock()
	var invites []agent.ConnID
	for _, d := range dirs {
		if g, err := p.loadGroup(d.Base()); err == nil {
			for conn := range g.Invites {
				invites = append(invites, conn)
			}
		}
	}
	p.mu.Unlock()
	joined := map[memberID]agent.ConnID{}
	for _, conn := range invites {
		if info, err := p.ag.Connection(conn); err == nil && info.PeerInfo != nil {
			if ji, err := parseJoinInfo(info.PeerInfo); err == nil {
				joined[ji.ID] = conn
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range dirs {
		id := d.Base()
		g, err := p.loadGroup(id)
		if errors.Is(err, ErrNoGroup) {
			continue
		}
		if err != nil {
			return err
		}
		if g.Seed == nil || g.Next == 0 {
			continue
		}
		keys, err := p.st.List(contactDir(id).Join("ge", g.Me.String()))
		if err != nil {
			return err
		}
		changed := false
		for _, k := range keys {
			var le logEntry
			if err := getJSON(p.st, k, &le); err != nil {
				return err
			}
			ev, err := parseEvent(le.signedEvent)
			if err != nil || ev.Seq < g.Next {
				continue
			}
			changed = true
			g.Next = ev.Seq + 1
			if changes(ev.Kind) && ev.Kind != evCreate {
				if err := g.Roster.apply(ev); err == nil {
					p.effects(id, g, ev)
					if ev.Kind == evAdd {
						conn, ok := joined[ev.Member.ID]
						if _, pending := g.Invites[conn]; ok && pending {
							if err := p.finishAdmit(id, g, conn, ev); err != nil {
								return err
							}
						}
					}
				}
			}
			se := le.signedEvent
			w := &groupWire{T: wEv, Group: g.Roster.ID, Ev: &se}
			var descs map[memberID][]byte
			if ev.Kind == evFile {
				if descs, err = p.finishFile(id, ev); err != nil {
					return err
				}
			}
			b, err := w.encode()
			if err != nil {
				return err
			}
			q := queued{Wire: b, To: g.others(), Pos: le.Pos, Descs: descs}
			if ev.Kind == evRemove {
				q.To, q.Final = append(q.To, *ev.Target), []memberID{*ev.Target} // they learn they were removed
			}
			g.QNext++
			if err := putJSON(p.st, queueDir(id).Join(fmt.Sprintf("%020d", g.QNext)), q); err != nil {
				return err
			}
			p.pokeGroups(id)
			if le.Pos > 0 && (ev.Kind == evMsg || ev.Kind == evFile) {
				msg := Message{Contact: id, Seq: le.Pos, Text: ev.Text, Time: time.UnixMilli(ev.Time).UTC(), Status: StatusPending,
					Recipients: len(g.others())}
				if ev.Kind == evFile {
					msg.Text = ev.File.Name
					msg.File = &FileMeta{Name: ev.File.Name, Type: ev.File.Type, Size: ev.File.Size, Thumbnail: ev.File.Thumb, State: FileSent}
				}
				if err := p.showMessage(id, &msg, nil); err != nil {
					return err
				}
			}
		}
		if changed {
			if err := p.saveGroup(id, g); err != nil {
				return err
			}
		}
		if err := p.dropPostedUploads(id, g); err != nil {
			return err
		}
	}
	return nil
}

// dropPostedUploads deletes ready upload records whose file event a crash
// left signed and saved (so ResumeFile cannot post it twice), keeping the
// sender state for deleting the chunks; p.mu held.
func (p *Profile) dropPostedUploads(id string, g *groupRecord) error {
	ups, err := p.st.List(contactDir(id).Join("up"))
	if err != nil || len(ups) == 0 {
		return err
	}
	ready := map[string]store.Key{}
	recs := map[store.Key]*uploadRecord{}
	for _, k := range ups {
		var rec uploadRecord
		if getJSON(p.st, k, &rec) == nil && rec.Ready != nil {
			ready[string(rec.Ready.Digest)], recs[k] = k, &rec
		}
	}
	if len(ready) == 0 {
		return nil
	}
	keys, err := p.st.List(contactDir(id).Join("ge", g.Me.String()))
	if err != nil {
		return err
	}
	for _, k := range keys {
		var le logEntry
		if err := getJSON(p.st, k, &le); err != nil {
			return err
		}
		ev, err := parseEvent(le.signedEvent)
		if err != nil || ev.Kind != evFile {
			continue
		}
		if uk, ok := ready[string(ev.File.Digest)]; ok {
			rec := recs[uk]
			if ok, err := p.st.Has(sentFileKey(id, ev.Seq)); err == nil && !ok {
				if err := putJSON(p.st, sentFileKey(id, ev.Seq), sentFile{State: rec.Ready.State, Waiting: rec.Members}); err != nil {
					return err
				}
			}
			if err := p.st.Delete(uk); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishFile completes, after a crash, what follows the signing of our
// file event: the ready upload record with the same digest gives the
// members' descriptions (returned) and the sender state (the gf record),
// and goes. Without one, the event goes out without descriptions; p.mu held.
func (p *Profile) finishFile(id string, ev *groupEvent) (map[memberID][]byte, error) {
	keys, err := p.st.List(contactDir(id).Join("up"))
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		var rec uploadRecord
		if err := getJSON(p.st, k, &rec); err != nil || rec.Ready == nil || !bytes.Equal(rec.Ready.Digest, ev.File.Digest) {
			continue
		}
		if err := putJSON(p.st, sentFileKey(id, ev.Seq), sentFile{State: rec.Ready.State, Waiting: rec.Members}); err != nil {
			return nil, err
		}
		return rec.Ready.Descs, p.st.Delete(k)
	}
	return nil, nil
}
