package chat

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// maxBuffered bounds the out-of-order events kept per author; beyond it
// they are dropped (and asked for again).
const maxBuffered = 256

// maxResend bounds the events one "need" is answered with.
const maxResend = 500

// groupProblem reports a dropped group message without its content.
func (p *Profile) groupProblem(format string, args ...any) {
	p.listen(Event{Kind: "problem", Text: fmt.Sprintf(format, args...)})
}

// groupInvited handles an invitation a contact sent us; p.mu is not held.
func (p *Profile) groupInvited(contactID string, w *groupWire) error {
	if w.T != wInv {
		p.groupProblem("a group message from a contact was dropped")
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok, err := p.st.Has(groupIndexKey(w.Group)); err != nil || ok {
		return err // a repeat, or a group we are in
	}
	c, err := p.contact(contactID)
	if err != nil {
		return err
	}
	id := newChatID()
	g := &groupRecord{State: GroupInvited, Invitation: w, InvitedBy: contactID, Peers: map[memberID]*peerState{}}
	if err := p.saveGroup(id, g); err != nil {
		return err
	}
	entry := Contact{ID: id, Name: w.Profile.Name, PeerName: w.Profile.Name, Avatar: w.Profile.Picture, State: ContactConnected,
		Created: time.Now().UTC(), NextSeq: 1}
	if err := p.saveContact(&entry); err != nil {
		return err
	}
	if err := putJSON(p.st, groupIndexKey(w.Group), id); err != nil {
		return err
	}
	p.notice(id, g, time.Now(), c.Name+" invites you to "+w.Profile.Name)
	return p.refreshEntry(id, g)
}

// groupReceived handles a wrapper on a group connection.
func (p *Profile) groupReceived(conn agent.ConnID, gc groupConn, m agent.Received) error {
	w, err := decodeGroupWire(m.Body)
	if err != nil {
		p.groupProblem("a group message in an unknown format was dropped")
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(gc.Group)
	if errors.Is(err, ErrNoGroup) {
		return nil
	}
	if err != nil {
		return err
	}
	if g.groupID() != w.Group || gc.Member == (memberID{}) {
		p.groupProblem("a message for another group was dropped")
		return nil
	}
	switch w.T {
	case wFwd:
		p.forward(gc.Group, g, gc.Member, w)
	case wVia:
		inner, err := parseGroupWire(w.Inner, true)
		if err != nil || inner.Group != w.Group {
			p.groupProblem("a forwarded group message in an unknown format was dropped")
			break
		}
		if err := p.handleWire(gc.Group, g, *w.Sender, gc.Member, inner); err != nil {
			return err
		}
	default:
		if err := p.handleWire(gc.Group, g, gc.Member, gc.Member, w); err != nil {
			return err
		}
	}
	return p.saveGroup(gc.Group, g)
}

// groupID is the group's ID, also before we have its history.
func (g *groupRecord) groupID() groupID {
	if g.Roster.Members == nil && g.Invitation != nil {
		return g.Invitation.Group
	}
	return g.Roster.ID
}

// forward passes a member's wrapper on to a member we are connected to.
func (p *Profile) forward(id string, g *groupRecord, from memberID, w *groupWire) {
	inner, err := parseGroupWire(w.Inner, true)
	if err != nil {
		p.groupProblem("a group message to forward was dropped")
		return
	}
	t := g.Roster.Members[*w.To]
	if s := g.Roster.Members[from]; s == nil || !s.active() || t == nil || *w.To == g.Me || (!t.active() && !removes(inner, *w.To)) {
		p.groupProblem("a group message to forward was dropped: not a member")
		return
	}
	sender := from
	if err := p.enqueueDirect(id, g, &groupWire{T: wVia, Group: g.Roster.ID, Sender: &sender, Inner: w.Inner}, *w.To, !t.active()); err != nil {
		p.groupProblem("could not queue a group message to forward")
	}
}

// removes reports whether w is the event that removed member m (which
// still goes to m, so it learns it).
func removes(w *groupWire, m memberID) bool {
	if w.T != wEv {
		return false
	}
	ev, err := parseEvent(*w.Ev)
	return err == nil && ev.Kind == evRemove && ev.Target != nil && *ev.Target == m
}

// enqueueDirect queues w for one member, only over our own connection.
func (p *Profile) enqueueDirect(id string, g *groupRecord, w *groupWire, to memberID, final bool) error {
	b, err := w.encode()
	if err != nil {
		return err
	}
	q := queued{Wire: b, To: []memberID{to}, Direct: true}
	if final {
		q.Final = q.To
	}
	g.QNext++
	if err := putJSON(p.st, queueDir(id).Join(fmt.Sprintf("%020d", g.QNext)), q); err != nil {
		return err
	}
	p.pokeGroups(id)
	return nil
}

// handleWire handles a wrapper from member from (through: the member
// whose connection carried it); p.mu held, the caller saves g.
func (p *Profile) handleWire(id string, g *groupRecord, from, through memberID, w *groupWire) error {
	joining := g.State == GroupJoining
	if g.State != GroupActive && !joining {
		return nil // the group ended for us: nothing more is applied
	}
	switch w.T {
	case wEv:
		if joining {
			return nil // the adder sends live events only after the welcome
		}
		if err := p.receiveEvent(id, g, from, w); err != nil {
			return err
		}
		if from != through {
			return p.forwardedReceipt(id, g, from, w)
		}
		return nil
	case wRcpt:
		if !joining && w.Ref.Author == g.Me {
			var le logEntry
			if err := getJSON(p.st, logKey(id, g.Me, w.Ref.Seq), &le); err == nil && le.Pos > 0 {
				p.markGroupStatus(id, le.Pos, from, StatusDelivered)
			}
		}
	case wHist:
		return p.receiveHistory(id, g, from, w)
	case wWelcome:
		if !joining || from != g.Adder || from != through {
			return nil
		}
		return p.welcome(id, g, w.Start)
	case wIntro:
		if joining || w.New.ID == g.Me {
			return nil
		}
		n := g.Roster.Members[w.New.ID]
		if n != nil && (!n.active() || !bytes.Equal(n.Key, w.New.Key) || n.AddedBy != from) {
			p.groupProblem("an introduction that does not match the group was dropped")
			return nil
		}
		// The add event may still be on its way (it can take another
		// path): the link is made once it is applied and matches.
		ps := g.peer(w.New.ID)
		if ps.Conn == "" && !ps.MakeLink {
			ps.MakeLink, ps.IntroBy, ps.IntroKey = true, from, w.New.Key
			p.pokeGroups(id)
		}
	case wIntroInv:
		n := g.Roster.Members[*w.For]
		if joining || n == nil || !n.active() || n.AddedBy != g.Me {
			return nil
		}
		sender := from
		return p.enqueue(id, g, &groupWire{T: wIntroFwd, Group: g.Roster.ID, Sender: &sender, Link: w.Link, Start: w.Start}, []memberID{*w.For}, 0)
	case wIntroFwd:
		if from != g.Adder || w.Sender == nil || *w.Sender == g.Me {
			return nil
		}
		ps := g.peer(*w.Sender)
		if ps.Expect == 0 {
			ps.Expect = w.Start
		}
		if ps.Conn == "" && ps.JoinLink == "" {
			ps.JoinLink = w.Link
			p.pokeGroups(id)
			// Their changes of the group before their start for us may
			// have been missing from our adder's history.
			author := *w.Sender
			if err := p.enqueue(id, g, &groupWire{T: wNeed, Group: g.groupID(), Author: &author, Hist: true}, []memberID{author}, 0); err != nil {
				return err
			}
		}
		if !joining {
			return p.drain(id, g, *w.Sender)
		}
	case wGot:
		// Only over the member's own connection: a forwarder must not be
		// able to have our chunks deleted before the others have them.
		if !joining && w.Ref.Author == g.Me && from == through {
			return p.gotFile(id, from, w.Ref.Seq)
		}
	case wNeed:
		if joining {
			return nil
		}
		if !w.Hist && *w.Author != g.Me {
			return nil // only an author resends its messages, and only those meant for the asker
		}
		return p.resend(id, g, from, *w.Author, w.After, w.Hist)
	}
	return nil
}

// receiveEvent applies a live event in its author's order, keeping
// early ones until the gap before them is filled.
func (p *Profile) receiveEvent(id string, g *groupRecord, from memberID, w *groupWire) error {
	ev, err := parseEvent(*w.Ev)
	if err != nil {
		p.groupProblem("a malformed group event was dropped")
		return nil
	}
	if ev.Group != g.Roster.ID || ev.Author == g.Me {
		return nil
	}
	a := g.Roster.Members[ev.Author]
	if a == nil {
		p.groupProblem("a group event from an unknown member was dropped")
		return nil
	}
	if !w.Ev.verify(a.Key) {
		p.groupProblem("a group event with a bad signature was dropped (forwarded by %s)", g.nameOf(from))
		return nil
	}
	ps := g.peer(ev.Author)
	if from == ev.Author && ps.Expect == 0 && w.Start > 0 {
		ps.Expect = w.Start
	}
	switch {
	case ps.Expect == 0 || ev.Seq > ps.Expect:
		return p.buffer(id, g, from, ev, w)
	case ev.Seq < ps.Expect:
		var le logEntry
		err := getJSON(p.st, logKey(id, ev.Author, ev.Seq), &le)
		if err == nil && !bytes.Equal(le.E, w.Ev.E) {
			p.groupProblem("a replayed group event from %s was dropped", a.Name)
		}
		return nil
	}
	if err := p.applyEvent(id, g, ev, *w.Ev, w.Desc); err != nil {
		return err
	}
	return p.drain(id, g, ev.Author)
}

// forwardedReceipt tells the author of a post that reached us through a
// forwarder that we stored it (a copy that came directly is acknowledged
// by the agent's own receipt); only once it is in our log.
func (p *Profile) forwardedReceipt(id string, g *groupRecord, from memberID, w *groupWire) error {
	ev, err := parseEvent(*w.Ev)
	if err != nil || ev.Author != from || changes(ev.Kind) {
		return nil
	}
	if ok, err := p.st.Has(logKey(id, ev.Author, ev.Seq)); err != nil || !ok {
		return err
	}
	return p.enqueue(id, g, &groupWire{T: wRcpt, Group: g.Roster.ID, Ref: &eventRef{Author: ev.Author, Seq: ev.Seq}}, []memberID{ev.Author}, 0)
}

// buffer keeps an event that came before its predecessors and asks the
// member who sent it for the missing ones.
func (p *Profile) buffer(id string, g *groupRecord, from memberID, ev *groupEvent, w *groupWire) error {
	ps := g.peer(ev.Author)
	if ps.Buffered >= maxBuffered {
		p.groupProblem("a group event was dropped: too many out of order")
		return nil
	}
	k := pendingEventKey(id, ev.Author, ev.Seq)
	if ok, err := p.st.Has(k); err != nil || ok {
		// Kept before a crash that lost the count: count it again (drain
		// recounts what it finds).
		ps.Buffered = max(ps.Buffered, 1)
		return err
	}
	if err := putJSON(p.st, k, w); err != nil {
		return err
	}
	ps.Buffered++
	if ps.Expect > 0 && ps.Asked < ps.Expect {
		// Ask the author: it is the one who has them all.
		ps.Asked = ps.Expect
		author := ev.Author
		return p.enqueue(id, g, &groupWire{T: wNeed, Group: g.Roster.ID, Author: &author, After: ps.Expect - 1}, []memberID{author}, 0)
	}
	return nil
}

// drain applies buffered events of an author that are now in order.
func (p *Profile) drain(id string, g *groupRecord, author memberID) error {
	ps := g.peer(author)
	for ps.Expect > 0 && ps.Buffered > 0 {
		keys, err := p.st.List(contactDir(id).Join("gp", author.String()))
		if err != nil {
			return err
		}
		progressed := false
		left := len(keys)
		for _, k := range keys {
			var w groupWire
			if err := getJSON(p.st, k, &w); err != nil {
				return err
			}
			ev, err := parseEvent(*w.Ev)
			if err != nil || ev.Seq < ps.Expect {
				if err := p.st.Delete(k); err != nil {
					return err
				}
				left--
				continue
			}
			if ev.Seq > ps.Expect {
				break
			}
			if err := p.applyEvent(id, g, ev, *w.Ev, w.Desc); err != nil {
				return err
			}
			if err := p.st.Delete(k); err != nil {
				return err
			}
			left--
			progressed = true
		}
		ps.Buffered = left // the records are the truth; the count follows them
		if !progressed {
			break
		}
	}
	return nil
}

// applyEvent applies the next event of its author: log first (with the
// position its message will have), then the message, then the caller
// saves the group record (the author's Expect), so a crash between them
// is repaired by the redelivery without showing anything twice.
func (p *Profile) applyEvent(id string, g *groupRecord, ev *groupEvent, se signedEvent, desc []byte) error {
	ps := g.peer(ev.Author)
	defer func() { ps.Expect = ev.Seq + 1 }()
	author := g.Roster.Members[ev.Author]
	authorName := author.Name
	var le logEntry
	err := getJSON(p.st, logKey(id, ev.Author, ev.Seq), &le)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	show := !changes(ev.Kind)
	if errors.Is(err, store.ErrNotFound) {
		if show {
			if le.Pos, err = p.reservePos(id); err != nil {
				return err
			}
		}
		g.Applied++
		le.signedEvent, le.Order, le.Desc = se, g.Applied, desc
		if err := putJSON(p.st, logKey(id, ev.Author, ev.Seq), le); err != nil {
			return err
		}
	}
	if show {
		if err := g.Roster.check(ev); err != nil {
			p.groupProblem("a group message from %s was refused: %v", authorName, err)
			return nil
		}
		rec := messageRecord{Message: Message{Contact: id, Seq: le.Pos, Incoming: true, Text: ev.Text, Time: time.UnixMilli(ev.Time).UTC(),
			Author: ev.Author.String(), AuthorName: authorName}, EventSeq: ev.Seq}
		if ev.Kind == evFile {
			rec.Text, rec.FileDesc, rec.Digest = ev.File.Name, desc, ev.File.Digest
			rec.File = &FileMeta{Name: ev.File.Name, Type: ev.File.Type, Size: ev.File.Size, Thumbnail: ev.File.Thumb, State: FileAvailable}
			if desc == nil {
				rec.File.State, rec.Reason = FileFailed, "the file's download details did not arrive"
			}
		}
		return p.showRecord(id, &rec)
	}
	if err := g.Roster.apply(ev); err != nil {
		p.groupProblem("a change of the group by %s was refused: %v", authorName, err)
		return nil
	}
	p.effects(id, g, ev)
	return p.refreshEntry(id, g)
}

// receiveHistory applies an event of the group's past: to the roster
// only, in the order the adder sends them, each signature checked.
func (p *Profile) receiveHistory(id string, g *groupRecord, from memberID, w *groupWire) error {
	ev, err := parseEvent(*w.Ev)
	if err != nil || !changes(ev.Kind) {
		p.groupProblem("a malformed group event was dropped")
		return nil
	}
	if ev.Group != g.groupID() {
		return nil
	}
	if ok, err := p.st.Has(logKey(id, ev.Author, ev.Seq)); err != nil || ok {
		return err
	}
	key := []byte(nil)
	if ev.Kind == evCreate {
		key = ev.Member.Key
	} else if a := g.Roster.Members[ev.Author]; a != nil {
		key = a.Key
	}
	if !w.Ev.verify(key) {
		p.groupProblem("a group event with a bad signature was dropped (sent by %s)", g.nameOf(from))
		return nil
	}
	if g.State == GroupActive {
		if ps := g.Peers[ev.Author]; ps != nil && ps.Expect > 0 && ev.Seq >= ps.Expect {
			return p.receiveEvent(id, g, from, &groupWire{T: wEv, Group: w.Group, Ev: w.Ev})
		}
	}
	if err := g.Roster.apply(ev); err != nil {
		p.groupProblem("a change of the group's past was refused: %v", err)
		return nil
	}
	g.Applied++
	if err := putJSON(p.st, logKey(id, ev.Author, ev.Seq), logEntry{signedEvent: *w.Ev, Order: g.Applied}); err != nil {
		return err
	}
	p.listen(Event{Kind: "members", Text: id})
	return nil
}

// welcome: the adder sent the whole history; we are in.
func (p *Profile) welcome(id string, g *groupRecord, start uint64) error {
	me := g.Roster.Members[g.Me]
	if me == nil || g.Roster.Members[g.Adder] == nil || !bytes.Equal(me.Key, g.key().Public().(ed25519.PublicKey)) {
		p.groupProblem("the group's history does not name you: the invitation was not completed")
		return nil
	}
	g.State = GroupActive
	for _, m := range g.others() {
		ps := g.peer(m)
		ps.Start = 1
		if m != g.Adder {
			ps.Via = g.Adder
		}
	}
	ap := g.peer(g.Adder)
	if ap.Expect == 0 {
		ap.Expect = start
	}
	if _, _, err := p.author(id, g, &groupEvent{Kind: evJoined}, false); err != nil {
		return err
	}
	p.notice(id, g, time.Now(), "You joined the group")
	for _, m := range g.others() {
		if err := p.drain(id, g, m); err != nil {
			return err
		}
	}
	return p.refreshEntry(id, g)
}

// resend answers a member's "need": our copies of an author's events
// after a seq, in order.
func (p *Profile) resend(id string, g *groupRecord, to, author memberID, after uint64, hist bool) error {
	keys, err := p.st.List(contactDir(id).Join("ge", author.String()))
	if err != nil {
		return err
	}
	first := after + 1
	if ps := g.Peers[to]; !hist && ps != nil && ps.Start > first {
		first = ps.Start // nothing from before they were in the group
	}
	sent := 0
	for _, k := range keys {
		var le logEntry
		if err := getJSON(p.st, k, &le); err != nil {
			return err
		}
		ev, err := parseEvent(le.signedEvent)
		if err != nil || ev.Seq < first || (hist && !changes(ev.Kind)) {
			continue
		}
		if sent++; sent > maxResend {
			break
		}
		se := le.signedEvent
		t := wEv
		if hist {
			t = wHist
		}
		if err := p.enqueue(id, g, &groupWire{T: t, Group: g.Roster.ID, Ev: &se}, []memberID{to}, 0); err != nil {
			return err
		}
	}
	return nil
}

// groupConnecting: a member joined the one-time link we made for them.
func (p *Profile) groupConnecting(conn agent.ConnID, gc groupConn, info []byte) {
	ji, err := parseJoinInfo(info)
	if err != nil {
		p.groupProblem("a group connection with a malformed handshake was refused")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(gc.Group)
	if err != nil || g.Roster.ID != ji.Group {
		return
	}
	if gc.Member != (memberID{}) {
		// Our link for an introduced member.
		if ji.ID != gc.Member {
			p.groupProblem("a group connection from an unexpected member was refused")
			return
		}
		ps := g.peer(gc.Member)
		if ps.Conn == conn && ps.Link == "invited" {
			ps.Link = "accepted"
			p.pokeGroups(gc.Group)
		}
		_ = p.saveGroup(gc.Group, g)
		return
	}
	inv, ok := g.Invites[conn]
	if !ok || ji.Member == nil {
		return
	}
	if err := p.admit(gc.Group, g, conn, inv, *ji.Member); err != nil {
		p.groupProblem("could not add a member to %s: %v", g.Roster.Profile.Name, err)
		g.Cancel = append(g.Cancel, conn)
		delete(g.Invites, conn)
		p.pokeGroups(gc.Group)
	}
	if err := p.saveGroup(gc.Group, g); err != nil {
		p.groupProblem("could not save a group")
	}
}

// admit adds the member who joined our invitation: the signed add event
// to everyone, the group's history and a welcome to them, and an
// introduction to every other member; p.mu held, the caller saves g.
func (p *Profile) admit(id string, g *groupRecord, conn agent.ConnID, inv pendingInvite, mi memberInfo) error {
	mi.Role = inv.Role
	ev, _, err := p.author(id, g, &groupEvent{Kind: evAdd, Member: &mi}, false)
	if errors.Is(err, ErrTooLong) && mi.Avatar != nil {
		mi.Avatar = nil // the picture does not fit the event: the member goes without it
		ev, _, err = p.author(id, g, &groupEvent{Kind: evAdd, Member: &mi}, false)
	}
	if err != nil {
		return err
	}
	p.effects(id, g, ev)
	return p.finishAdmit(id, g, conn, ev)
}

// finishAdmit does the rest of an admission once the add event is
// applied: the connection recorded as the newcomer's, the history and the
// welcome to them, an introduction to every other member; p.mu held.
func (p *Profile) finishAdmit(id string, g *groupRecord, conn agent.ConnID, ev *groupEvent) error {
	mi := *ev.Member
	others := make([]memberID, 0)
	for _, m := range g.others() {
		if m != mi.ID {
			others = append(others, m)
		}
	}
	delete(g.Invites, conn)
	ps := g.peer(mi.ID)
	ps.Conn, ps.Link, ps.Via, ps.Start = conn, "accepted", g.Me, g.Next
	p.gconns[conn] = groupConn{Group: id, Member: mi.ID}
	if err := putJSON(p.st, gconnKey(conn), groupConn{Group: id, Member: mi.ID}); err != nil {
		return err
	}
	// The history, in the order we applied it.
	entries, err := p.history(id)
	if err != nil {
		return err
	}
	for i := range entries {
		if err := p.enqueue(id, g, &groupWire{T: wHist, Group: g.Roster.ID, Ev: &entries[i].signedEvent}, []memberID{mi.ID}, 0); err != nil {
			return err
		}
	}
	if err := p.enqueue(id, g, &groupWire{T: wWelcome, Group: g.Roster.ID, Start: ps.Start}, []memberID{mi.ID}, 0); err != nil {
		return err
	}
	newcomer := mi
	for _, m := range others {
		if err := p.enqueue(id, g, &groupWire{T: wIntro, Group: g.Roster.ID, New: &newcomer}, []memberID{m}, 0); err != nil {
			return err
		}
	}
	return p.refreshEntry(id, g)
}

// history lists the group's change events in the order we applied them.
func (p *Profile) history(id string) ([]logEntry, error) {
	authors, err := p.st.ListDirs(contactDir(id).Join("ge"))
	if err != nil {
		return nil, err
	}
	var out []logEntry
	for _, a := range authors {
		keys, err := p.st.List(a)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			var le logEntry
			if err := getJSON(p.st, k, &le); err != nil {
				return nil, err
			}
			var head struct {
				Kind string `json:"kind"`
			}
			if json.Unmarshal(le.E, &head) == nil && changes(head.Kind) {
				out = append(out, le)
			}
		}
	}
	sortByOrder(out)
	return out, nil
}

func sortByOrder(l []logEntry) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].Order < l[j-1].Order; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// groupConnected: the pairwise connection is up on both sides.
func (p *Profile) groupConnected(conn agent.ConnID, gc groupConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(gc.Group)
	if err != nil {
		return
	}
	if ps := g.Peers[gc.Member]; ps != nil && ps.Conn == conn && !ps.Drop {
		ps.Link = "connected"
		// Now that we talk directly, ask them for their changes of the
		// group: any that neither our adder's history nor a forwarder
		// brought us (their "joined" among them) comes now.
		author := gc.Member
		if g.State == GroupActive {
			if err := p.enqueueDirect(gc.Group, g, &groupWire{T: wNeed, Group: g.Roster.ID, Author: &author, Hist: true}, author, false); err != nil {
				p.groupProblem("could not queue a group message")
			}
		}
		p.pokeGroups(gc.Group)
		_ = p.saveGroup(gc.Group, g)
		p.listen(Event{Kind: "members", Text: gc.Group})
	}
}

// groupStatus moves an outgoing group message's status: sent when the
// relay has a copy, delivered to a member when its device stored it.
func (p *Profile) groupStatus(conn agent.ConnID, gc groupConn, agentID uint64, s Status) {
	var pos uint64
	if err := getJSON(p.st, groupOutKey(gc.Group, conn, agentID), &pos); err != nil {
		// The worker records which message a copy is only after the send
		// returned: a report (sent, or even the member's receipt) can come
		// first. Kept, bounded per connection, until it does.
		if errors.Is(err, store.ErrNotFound) && len(p.early[string(conn)]) < maxEarly {
			if p.early[string(conn)] == nil {
				p.early[string(conn)] = map[uint64]statusUpdate{}
			}
			if prev, ok := p.early[string(conn)][agentID]; !ok || rank(s) > rank(prev.status) {
				p.early[string(conn)][agentID] = statusUpdate{status: s}
			}
		}
		return
	}
	p.markGroupStatus(gc.Group, pos, gc.Member, s)
}

func (p *Profile) markGroupStatus(id string, pos uint64, member memberID, s Status) {
	m, err := p.getMessage(id, pos)
	if err != nil {
		return
	}
	changed := false
	if m.Status == StatusPending && (s == StatusSent || s == StatusDelivered) {
		m.Status, changed = StatusSent, true
	}
	if s == StatusDelivered {
		h := member.String()
		found := false
		for _, d := range m.DeliveredTo {
			found = found || d == h
		}
		if !found {
			m.DeliveredTo = append(m.DeliveredTo, h)
			changed = true
		}
		if len(m.DeliveredTo) >= m.Recipients && m.Status != StatusDelivered {
			m.Status = StatusDelivered
		}
	}
	if !changed {
		return
	}
	if err := p.putMessage(m); err != nil {
		p.groupProblem("could not save a message status")
		return
	}
	p.listen(Event{Kind: "status", Message: m})
}

func groupOutKey(id string, conn agent.ConnID, agentID uint64) store.Key {
	return contactDir(id).Join("go", string(conn), fmt.Sprintf("%020d", agentID))
}

// groupPeerDeleted: a member deleted our pairwise connection.
func (p *Profile) groupPeerDeleted(conn agent.ConnID, gc groupConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(gc.Group)
	if err != nil {
		return
	}
	if ps := g.Peers[gc.Member]; ps != nil && ps.Conn == conn {
		ps.Drop = true
		p.pokeGroups(gc.Group)
		_ = p.saveGroup(gc.Group, g)
	}
}
