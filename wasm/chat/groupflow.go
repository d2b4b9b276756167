package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/store"
)

// The group protocol's moving parts: the send queue (every wrapper a
// group sends goes through it, so nothing is sent from inside an agent
// callback and a crash loses nothing), routing (direct, forwarded by the
// introducer, or held until a connection exists), and the handlers of
// received wrappers.

// queued is one wrapper waiting to be sent to some members, in
// c/<id>/gq/<n>. Entries go out in order per member.
type queued struct {
	Wire []byte     `json:"wire"` // the encoded wrapper
	To   []memberID `json:"to"`
	// Pos: the message this sends (its position), for delivery statuses.
	Pos uint64 `json:"pos,omitempty"`
	// Descs: a file's per-member descriptions, by member.
	Descs map[memberID][]byte `json:"descs,omitempty"`
	// Direct: only over our own connection with the member (a forward).
	Direct bool `json:"direct,omitempty"`
	// Final: members it goes to even though they are no longer active
	// (the event that removed them).
	Final []memberID `json:"final,omitempty"`
}

func queueDir(id string) store.Key { return contactDir(id).Join("gq") }

// enqueue stores w for the members to; p.mu must be held and g saved by
// the caller afterwards (QNext).
func (p *Profile) enqueue(id string, g *groupRecord, w *groupWire, to []memberID, pos uint64) error {
	if len(to) == 0 {
		return nil
	}
	b, err := w.encode()
	if err != nil {
		return err
	}
	g.QNext++
	if err := putJSON(p.st, queueDir(id).Join(fmt.Sprintf("%020d", g.QNext)), queued{Wire: b, To: to, Pos: pos}); err != nil {
		return err
	}
	p.pokeGroups(id)
	return nil
}

// others lists the active members other than us.
func (g *groupRecord) others() []memberID {
	var out []memberID
	for mid, m := range g.Roster.Members {
		if mid != g.Me && m.active() {
			out = append(out, mid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// peer returns our pair state with a member, creating it.
func (g *groupRecord) peer(m memberID) *peerState {
	ps := g.Peers[m]
	if ps == nil {
		ps = &peerState{}
		g.Peers[m] = ps
	}
	return ps
}

// author signs a new event of ours, applies it, logs it and queues it to
// every other member. It returns the event and its position when shown.
// p.mu must be held; the caller saves g.
func (p *Profile) author(id string, g *groupRecord, ev *groupEvent, show bool) (*groupEvent, uint64, error) {
	return p.authorWith(id, g, ev, show, nil)
}

// authorWith is author with per-member download descriptions of a file.
func (p *Profile) authorWith(id string, g *groupRecord, ev *groupEvent, show bool, descs map[memberID][]byte) (*groupEvent, uint64, error) {
	if g.State != GroupActive {
		return nil, 0, ErrGroupClosed
	}
	ev.V, ev.Group, ev.Author, ev.Seq, ev.Time = 1, g.Roster.ID, g.Me, g.Next, time.Now().UnixMilli()
	se, err := signEvent(g.key(), ev)
	if err != nil {
		return nil, 0, err
	}
	var largest []byte
	for _, d := range descs {
		if len(d) > len(largest) {
			largest = d
		}
	}
	if err := checkFits(g.Roster.ID, se, largest); err != nil {
		return nil, 0, err
	}
	to := g.others()
	if err := g.Roster.apply(ev); err != nil {
		if errors.Is(err, ErrGroupFull) {
			return nil, 0, ErrGroupFull
		}
		return nil, 0, fmt.Errorf("%w: %w", ErrNotAllowed, err)
	}
	g.Next++
	var pos uint64
	if show {
		if pos, err = p.reservePos(id); err != nil {
			return nil, 0, err
		}
	}
	g.Applied++
	if err := putJSON(p.st, logKey(id, g.Me, ev.Seq), logEntry{signedEvent: se, Pos: pos, Order: g.Applied}); err != nil {
		return nil, 0, err
	}
	w := &groupWire{T: wEv, Group: g.Roster.ID, Ev: &se}
	b, err := w.encode()
	if err != nil {
		return nil, 0, err
	}
	q := queued{Wire: b, To: to, Pos: pos, Descs: descs}
	if ev.Kind == evRemove {
		q.Final = []memberID{*ev.Target} // they learn they were removed
	}
	if len(to) > 0 {
		g.QNext++
		if err := putJSON(p.st, queueDir(id).Join(fmt.Sprintf("%020d", g.QNext)), q); err != nil {
			return nil, 0, err
		}
		p.pokeGroups(id)
	}
	return ev, pos, nil
}

// SendGroupText sends a text message to every member. It returns once
// the message is stored; its status moves to sent, and DeliveredTo grows
// as members' devices store it.
func (p *Profile) SendGroupText(ctx context.Context, id, text string) (Message, error) {
	if err := checkText(text); err != nil {
		return Message{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return Message{}, err
	}
	if g.State != GroupActive {
		return Message{}, ErrGroupClosed
	}
	if me := g.Roster.Members[g.Me]; me == nil || me.Role.rank() < RoleMember.rank() {
		return Message{}, fmt.Errorf("%w: observers cannot post", ErrNotAllowed)
	}
	ev, pos, err := p.author(id, g, &groupEvent{Kind: evMsg, Text: text}, true)
	if err != nil {
		return Message{}, err
	}
	msg := Message{Contact: id, Seq: pos, Text: text, Time: time.UnixMilli(ev.Time).UTC(), Status: StatusPending,
		Recipients: len(g.others())}
	if msg.Recipients == 0 {
		msg.Status = StatusSent // nobody else yet: it is stored, and that is all sending means
	}
	if err := p.showMessage(id, &msg, nil); err != nil {
		return Message{}, err
	}
	if err := p.saveGroup(id, g); err != nil {
		return Message{}, err
	}
	return msg, nil
}

// showMessage stores a message at msg.Seq and updates the chat entry;
// p.mu must be held. A message already there is kept.
func (p *Profile) showMessage(id string, msg *Message, desc []byte) error {
	return p.showRecord(id, &messageRecord{Message: *msg, FileDesc: desc})
}

// showRecord is showMessage with the whole record; p.mu must be held.
func (p *Profile) showRecord(id string, rec *messageRecord) error {
	msg := &rec.Message
	c, err := p.contact(id)
	if err != nil {
		return err
	}
	if c.NextSeq <= msg.Seq {
		c.NextSeq = msg.Seq + 1
	}
	if ok, err := p.st.Has(msgKey(id, msg.Seq)); err != nil || ok {
		if err == nil {
			err = p.saveContact(c) // a crash came between the two
		}
		return err
	}
	if err := putJSON(p.st, msgKey(id, msg.Seq), rec); err != nil {
		return err
	}
	c.LastText, c.LastTime = msg.Text, msg.Time
	if msg.AuthorName != "" && !msg.Notice {
		c.LastText = msg.AuthorName + ": " + msg.Text
	}
	if msg.Incoming {
		c.Unread++
	}
	if err := p.saveContact(c); err != nil {
		return err
	}
	p.listen(Event{Kind: "message", Message: msg, Contact: c})
	return nil
}

// nextPos is the position for a new message of a chat: the entry's next
// position, past any record a crash left there without the entry
// recording it (a message written, the entry not saved); p.mu held.
func (p *Profile) nextPos(id string, c *Contact) (uint64, error) {
	pos := c.NextSeq
	for {
		ok, err := p.st.Has(msgKey(id, pos))
		if err != nil || !ok {
			return pos, err
		}
		pos++
	}
}

// reservePos takes the position of a new message of a chat and records
// it taken (the entry's next position) before anything names it, so that
// a message whose writing a crash cut short gets its position back when
// it is processed again, and no other message takes it meanwhile; p.mu
// held.
func (p *Profile) reservePos(id string) (uint64, error) {
	c, err := p.contact(id)
	if err != nil {
		return 0, err
	}
	pos, err := p.nextPos(id, c)
	if err != nil {
		return 0, err
	}
	c.NextSeq = pos + 1
	return pos, p.saveContact(c)
}

// notice shows a change of a group, or of a contact's encryption, in its
// conversation; p.mu held.
func (p *Profile) notice(id string, g *groupRecord, t time.Time, text string) {
	pos, err := p.reservePos(id)
	if err != nil {
		return
	}
	msg := Message{Contact: id, Seq: pos, Incoming: true, Notice: true, Text: text, Time: t.UTC()}
	if err := p.showMessage(id, &msg, nil); err != nil {
		p.listen(Event{Kind: "problem", Text: "could not save a notice"})
	}
}

// nameOf is a member's name as we show it ("you" for us).
func (g *groupRecord) nameOf(m memberID) string {
	if m == g.Me {
		return "You"
	}
	if it := g.Roster.Members[m]; it != nil {
		return it.Name
	}
	return "Someone"
}

// describe is the notice text of a change event.
func (g *groupRecord) describe(ev *groupEvent) string {
	who := g.nameOf(ev.Author)
	target := func() string {
		if ev.Target == nil {
			return ""
		}
		if *ev.Target == g.Me {
			return "you"
		}
		return g.nameOf(*ev.Target)
	}
	switch ev.Kind {
	case evAdd:
		if ev.Member.ID == g.Me {
			return who + " added you"
		}
		return who + " added " + ev.Member.Name
	case evJoined:
		return who + " joined"
	case evRole:
		return fmt.Sprintf("%s made %s %s", who, target(), ev.Role)
	case evRemove:
		return who + " removed " + target()
	case evLeave:
		return who + " left"
	case evProfile:
		return who + " updated the group profile"
	case evDelete:
		return who + " deleted the group"
	}
	return ""
}

// InviteToGroup invites a connected contact to a group with a role (at
// most ours). The invitation (the group's profile, our member ID and key,
// and a one-time link for the group connection) goes over the contact's
// connection; when they join, we add them and introduce them to everyone.
func (p *Profile) InviteToGroup(ctx context.Context, id, contactID string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	relay, err := p.receiveRelay()
	if err != nil {
		return err
	}
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err == nil {
		err = p.canInvite(g, role)
	}
	var c *Contact
	if err == nil {
		c, err = p.contact(contactID)
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("%w: %s", ErrNoContact, contactID)
		}
	}
	if err == nil && (c.Group != nil || c.State != ContactConnected) {
		err = fmt.Errorf("%w: invite a connected contact", ErrInvalid)
	}
	var info []byte
	if err == nil {
		info, err = json.Marshal(joinInfo{Group: g.Roster.ID, ID: g.Me})
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	conn, inv, err := p.ag.CreateInvitation(ctx, relay, info)
	if err != nil {
		return err
	}
	link, err := inv.Link(p.m.cfg.Origin)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if g, err = p.loadGroup(id); err == nil {
		err = p.canInvite(g, role)
	}
	if err == nil {
		p.gconns[conn] = groupConn{Group: id}
		err = putJSON(p.st, gconnKey(conn), groupConn{Group: id})
	}
	if err == nil {
		if g.Invites == nil {
			g.Invites = map[agent.ConnID]pendingInvite{}
		}
		g.Invites[conn] = pendingInvite{Contact: contactID, Role: role}
		err = p.saveGroup(id, g)
	}
	var body []byte
	if err == nil {
		me := g.Roster.Members[g.Me].memberInfo
		me.Avatar = nil // the invitation must fit one message beside the group's picture
		body, err = (&groupWire{T: wInv, Group: g.Roster.ID, Profile: &g.Roster.Profile, From: &me, Link: link, Role: role}).encode()
	}
	if err == nil {
		p.notice(id, g, time.Now(), "You invited "+c.Name)
	}
	p.mu.Unlock()
	// Not under p.mu: the agent may be in a callback on this connection,
	// holding its lock and waiting for p.mu.
	if err == nil {
		_, err = p.ag.Send(ctx, agent.ConnID(contactID), body)
	}
	if err != nil {
		p.mu.Lock()
		delete(p.gconns, conn)
		_ = p.st.Delete(gconnKey(conn))
		if g, gerr := p.loadGroup(id); gerr == nil {
			delete(g.Invites, conn)
			_ = p.saveGroup(id, g)
		}
		p.mu.Unlock()
		go func() { _ = p.ag.Delete(context.WithoutCancel(ctx), conn) }()
		return err
	}
	return nil
}

// canInvite checks that we may invite someone with role now; p.mu held.
func (p *Profile) canInvite(g *groupRecord, role Role) error {
	if g.State != GroupActive {
		return ErrGroupClosed
	}
	me := g.Roster.Members[g.Me]
	if me == nil || me.Role.rank() < RoleAdmin.rank() || role.rank() > me.Role.rank() {
		return fmt.Errorf("%w: only owners and admins invite, with a role up to theirs", ErrNotAllowed)
	}
	if g.Roster.activeCount()+len(g.Invites) >= MaxGroupMembers {
		return ErrGroupFull
	}
	return nil
}

// JoinGroup accepts a group invitation (the chat entry made when a
// contact invited us). With incognito we appear in it under a random name.
func (p *Profile) JoinGroup(ctx context.Context, id string, incognito bool) error {
	relay, err := p.receiveRelay()
	if err != nil {
		return err
	}
	p.mu.Lock()
	g, err := p.loadGroup(id)
	if err == nil && (g.State != GroupInvited || g.Invitation == nil) {
		err = fmt.Errorf("%w: not an open invitation", ErrInvalid)
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	inv, err := agent.ParseLink(g.Invitation.Link, agent.Versions)
	if err != nil {
		return err
	}
	if err := p.m.CheckRelay(inv.Relay); err != nil {
		return err
	}
	name, avatar, alias := p.ourMember(incognito)
	pub, priv, err := newMemberKey()
	if err != nil {
		return err
	}
	me := newMemberID()
	info, err := json.Marshal(joinInfo{Group: g.Invitation.Group, ID: me,
		Member: &memberInfo{ID: me, Key: pub, Role: g.Invitation.Role, Name: name, Avatar: avatar}})
	if err != nil {
		return err
	}
	adder := g.Invitation.From.ID
	p.linking.RLock()
	defer p.linking.RUnlock()
	conn, err := p.ag.Join(ctx, inv, relay, info)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gconns[conn] = groupConn{Group: id, Member: adder}
	if err := putJSON(p.st, gconnKey(conn), groupConn{Group: id, Member: adder}); err != nil {
		return err
	}
	g.State, g.Me, g.Seed, g.Next, g.Incognito, g.Adder = GroupJoining, me, priv.Seed(), 1, alias, adder
	ps := g.peer(adder)
	ps.Conn, ps.Link = conn, "joined"
	if err := p.saveGroup(id, g); err != nil {
		return err
	}
	return p.refreshEntry(id, g)
}

// refreshEntry updates the chat entry of a group from its record; p.mu held.
func (p *Profile) refreshEntry(id string, g *groupRecord) error {
	c, err := p.contact(id)
	if err != nil {
		return err
	}
	c.Group = g.summary(p)
	c.Name, c.PeerName, c.Avatar, c.Incognito = c.Group.Profile.Name, c.Group.Profile.Name, c.Group.Profile.Picture, g.Incognito
	if err := p.saveContact(c); err != nil {
		return err
	}
	p.listen(Event{Kind: "contact", Contact: c})
	return nil
}

// DeclineGroup drops a group invitation.
func (p *Profile) DeclineGroup(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return err
	}
	if g.State != GroupInvited {
		return fmt.Errorf("%w: not an open invitation", ErrInvalid)
	}
	if err := p.st.Delete(groupIndexKey(g.Invitation.Group)); err != nil {
		return err
	}
	return p.st.DeleteAll(contactDir(id))
}

// groupIndexKey maps a group ID to our chat entry for it.
func groupIndexKey(gid groupID) store.Key {
	b, _ := gid.MarshalText()
	return store.Key("gi").Join(string(b))
}

// SetMemberRole changes a member's role (owners and admins; an admin acts
// on members and observers only, and gives at most its own role).
func (p *Profile) SetMemberRole(id, member string, role Role) error {
	mid, err := parseMember(member)
	if err != nil {
		return err
	}
	if !role.Valid() {
		return fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	return p.change(id, &groupEvent{Kind: evRole, Target: &mid, Role: role})
}

// RemoveMember removes a member: everyone deletes their connection with
// them, and they receive nothing more.
func (p *Profile) RemoveMember(id, member string) error {
	mid, err := parseMember(member)
	if err != nil {
		return err
	}
	return p.change(id, &groupEvent{Kind: evRemove, Target: &mid})
}

// UpdateGroup changes the group's profile (owners).
func (p *Profile) UpdateGroup(id string, prof GroupProfile) error {
	if err := prof.validate(); err != nil {
		return err
	}
	return p.change(id, &groupEvent{Kind: evProfile, Profile: &prof})
}

// LeaveGroup tells every member we leave, then deletes our connections.
func (p *Profile) LeaveGroup(id string) error { return p.change(id, &groupEvent{Kind: evLeave}) }

// DeleteGroup deletes the group for everyone (owners).
func (p *Profile) DeleteGroup(id string) error { return p.change(id, &groupEvent{Kind: evDelete}) }

// change authors a change event and applies its effects here.
func (p *Profile) change(id string, ev *groupEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return err
	}
	if ev.Target != nil && g.Roster.Members[*ev.Target] == nil {
		return fmt.Errorf("%w: %s", ErrNoMember, ev.Target)
	}
	if _, _, err := p.author(id, g, ev, false); err != nil {
		return err
	}
	p.effects(id, g, ev)
	if err := p.saveGroup(id, g); err != nil {
		return err
	}
	return p.refreshEntry(id, g)
}

// effects does what an applied change means for our connections and
// state, and shows it; p.mu held, the caller saves g.
func (p *Profile) effects(id string, g *groupRecord, ev *groupEvent) {
	switch ev.Kind {
	case evRemove:
		if *ev.Target == g.Me {
			g.State = GroupRemoved
			p.dropAll(id, g)
		} else {
			p.dropPeer(id, g, *ev.Target)
		}
	case evLeave:
		if ev.Author == g.Me {
			g.State = GroupLeft
			p.dropAll(id, g)
		} else {
			p.dropPeer(id, g, ev.Author)
		}
	case evDelete:
		g.State = GroupDeleted
		p.dropAll(id, g)
	case evAdd:
		if ev.Member.ID != g.Me {
			ps := g.peer(ev.Member.ID)
			ps.Via, ps.Start = ev.Author, g.Next
		}
	}
	if text := g.describe(ev); text != "" {
		p.notice(id, g, time.UnixMilli(ev.Time), text)
	}
	p.listen(Event{Kind: "members", Text: id})
}

// dropPeer marks our connection with a member for deletion once what we
// queued for it is out; p.mu held.
func (p *Profile) dropPeer(id string, g *groupRecord, m memberID) {
	if ps := g.Peers[m]; ps != nil {
		ps.Drop = true
		p.pokeGroups(id)
	}
}

// dropAll marks every connection of the group for deletion, and cancels
// our open invitations; p.mu held.
func (p *Profile) dropAll(id string, g *groupRecord) {
	for m := range g.Peers {
		p.dropPeer(id, g, m)
	}
	for conn := range g.Invites {
		g.Cancel = append(g.Cancel, conn)
	}
	g.Invites = nil
	p.pokeGroups(id)
}

// deleteGroupEntry deletes a group's chat entry and records, once the
// group is over for us (declined, left, removed or deleted); an active
// group must be left first.
func (p *Profile) deleteGroupEntry(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, err := p.loadGroup(id)
	if err != nil {
		return err
	}
	switch g.State {
	case GroupActive, GroupJoining:
		return fmt.Errorf("%w: leave the group first", ErrInvalid)
	}
	for _, ps := range g.Peers {
		if ps.Conn != "" && !ps.Dropped {
			return fmt.Errorf("%w: the group's connections are still being closed; try again in a moment", ErrInvalid)
		}
	}
	if len(g.Cancel) > 0 {
		return fmt.Errorf("%w: the group's connections are still being closed; try again in a moment", ErrInvalid)
	}
	if err := p.st.Delete(groupIndexKey(g.groupID())); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return p.st.DeleteAll(contactDir(id))
}
