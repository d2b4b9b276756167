package agent

// Contact addresses (SPEC.md, "Contact address"): a long-lived link that
// anyone can use to ask the owner to connect. The address is a queue on
// the owner's relay whose sender key is in the link, so that anyone who
// has the link can SEND to it and do nothing else. A request carries the
// requester's one-time invitation; accepting it is joining that
// invitation, so the new connection shares nothing with the address.

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wisp-chat/wisp/crypto/box"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/store"
)

// Contact address format and limits (SPEC.md, "Contact address").
const (
	// AddressFormat is the first byte of an address payload; an
	// invitation's is LinkFormat (1).
	AddressFormat = 2
	// AddressPath precedes the payload in the URL fragment.
	AddressPath = "#/address/"
	// GroupIDSize is the size of the group ID in a group link's tag.
	GroupIDSize = 16
	// MaxRequests is how many contact requests wait for an answer at
	// most; a new one beyond it drops the oldest.
	MaxRequests = 50
	// MaxSeenRequests is how many answered or dropped requests are
	// remembered, so that a repeat of one is ignored.
	MaxSeenRequests = 256

	seedSize = ed25519.SeedSize
	// fixed part of the payload: format, versions, key hash, host length,
	// port, sender ID, sender key seed, address key, tag type, checksum.
	addressFixedSize = 1 + 2 + 32 + 1 + 2 + QueueIDSize + seedSize + KeySize + 1 + checksumSize

	typeRequest = 'Q'
	// requestFixedSize: type, version, the two length fields, tag type.
	requestFixedSize  = 1 + 1 + 2 + 2 + 1
	minInvitationSize = linkFixedSize + 1
	maxInvitationSize = linkFixedSize + maxHostLen
	requestIDSize     = 12 // bytes of SHA-256(invitation) naming a request
)

// TagType says what an address is for.
type TagType byte

// Tag types. A client refuses an address whose tag type it does not know.
const (
	// TagNone: a person's contact address.
	TagNone TagType = 0
	// TagGroup: a group link; the tag carries the group's 16-byte ID.
	TagGroup TagType = 'G'
)

// Tag is the optional tag of an address, echoed in every request made
// with it.
type Tag struct {
	Type  TagType
	Group [GroupIDSize]byte // TagGroup only
}

func (t Tag) valid() bool {
	switch t.Type {
	case TagNone:
		return t.Group == [GroupIDSize]byte{}
	case TagGroup:
		return true
	}
	return false
}

func (t Tag) appendTo(b []byte) []byte {
	b = append(b, byte(t.Type))
	if t.Type == TagGroup {
		b = append(b, t.Group[:]...)
	}
	return b
}

// tagDataSize is the size of what follows a known tag type; ok is false
// for a type this version does not know.
func tagDataSize(t TagType) (n int, ok bool) {
	switch t {
	case TagNone:
		return 0, true
	case TagGroup:
		return GroupIDSize, true
	}
	return 0, false
}

// Address errors. ParseAddress wraps exactly one of the first four.
var (
	ErrNotAddress       = errors.New("not a Wisp contact address")
	ErrCorruptedAddress = errors.New("the contact address is corrupted")
	ErrAddressVersion   = errors.New("this contact address needs a newer version of Wisp")
	ErrAddressRelay     = errors.New("the contact address's relay address is invalid")
	// ErrAddressGone: the address's queue refused the request (AUTH): its
	// owner deleted or replaced it.
	ErrAddressGone = errors.New("this contact address no longer works")
	// ErrOwnAddress: a request to this agent's own address.
	ErrOwnAddress    = errors.New("this is your own contact address")
	ErrNoAddress     = errors.New("agent: no contact address")
	ErrAddressExists = errors.New("agent: there is a contact address already")
	// ErrNoRequest: no such request is waiting (answered, dropped, or
	// withdrawn by the requester).
	ErrNoRequest = errors.New("agent: no such contact request")
)

// ContactAddress is what an address link carries: the queue to send
// requests to, the key that may send to it, and the key that requests are
// encrypted to. Anyone who has it can ask to connect, as often as they
// like; it is meant to be shared widely.
type ContactAddress struct {
	Versions VersionRange
	Relay    wire.Address
	// SenderID is the sender-side ID of the address queue.
	SenderID [QueueIDSize]byte
	// SenderSeed is the Ed25519 seed of the address sender key, which the
	// owner set on the queue with SKEY: it lets anyone with the link SEND.
	SenderSeed [seedSize]byte
	// Key is the owner's X25519 key that requests are encrypted to.
	Key [KeySize]byte
	Tag Tag
}

// String does not print the keys.
func (c ContactAddress) String() string { return "agent.ContactAddress(" + c.Relay.Host + ")" }

// GoString does not print the keys.
func (c ContactAddress) GoString() string { return c.String() }

// payloadBytes is the binary payload, before base64.
func (c ContactAddress) payloadBytes() ([]byte, error) {
	if !c.Tag.valid() {
		return nil, fmt.Errorf("%w: tag type %#x", ErrAddressVersion, byte(c.Tag.Type))
	}
	b := make([]byte, 0, addressFixedSize+len(c.Relay.Host)+GroupIDSize)
	b = append(b, AddressFormat, c.Versions.Min, c.Versions.Max)
	b, err := appendRelay(b, c.Relay)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddressRelay, err)
	}
	b = append(b, c.SenderID[:]...)
	b = append(b, c.SenderSeed[:]...)
	b = append(b, c.Key[:]...)
	return appendChecksum(c.Tag.appendTo(b)), nil
}

// Payload returns the compact binary form, base64url without padding.
func (c ContactAddress) Payload() (string, error) {
	b, err := c.payloadBytes()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Link returns the address as a link on the given app origin.
func (c ContactAddress) Link(origin string) (string, error) {
	p, err := c.Payload()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(origin, "/") + "/" + AddressPath + p, nil
}

// IsAddressLink reports whether s looks like an address link (or payload)
// rather than an invitation: it has AddressPath, or it is a bare payload
// whose first byte is AddressFormat. It does not validate anything.
func IsAddressLink(s string) bool {
	s = strings.TrimSpace(s)
	if strings.Contains(s, AddressPath) {
		return true
	}
	if strings.Contains(s, "#") || strings.Contains(s, "://") || len(s) < 4 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[:4])
	return err == nil && b[0] == AddressFormat
}

// lowOrderProbe is a fixed X25519 scalar: a key whose product with it is
// all zeros is a low-order point, which no request could be sealed to.
func lowOrderProbe() []byte {
	p := [KeySize]byte{1: 1, 31: 0x40}
	return p[:]
}

// ParseAddress parses an address link (any origin) or a bare payload and
// validates everything in it; ours is the range of versions this agent
// speaks. The checks and their order are those of SPEC.md.
func ParseAddress(s string, ours VersionRange) (ContactAddress, error) {
	var c ContactAddress
	s = strings.TrimSpace(s)
	payload := s
	if i := strings.Index(s, AddressPath); i >= 0 {
		payload = s[i+len(AddressPath):]
	} else if strings.Contains(s, LinkPath) {
		return c, fmt.Errorf("%w: it is a one-time invitation link", ErrNotAddress)
	} else if strings.Contains(s, "://") || strings.Contains(s, "#") {
		return c, fmt.Errorf("%w: it has no %q part", ErrNotAddress, AddressPath)
	}
	if payload == "" {
		return c, fmt.Errorf("%w: it is empty", ErrNotAddress)
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return c, fmt.Errorf("%w: it contains characters that do not belong (was it cut or changed?)", ErrCorruptedAddress)
	}
	if len(b) < 3 {
		return c, fmt.Errorf("%w: it is too short", ErrCorruptedAddress)
	}
	switch {
	case b[0] == LinkFormat:
		return c, fmt.Errorf("%w: it is a one-time invitation", ErrNotAddress)
	case b[0] != AddressFormat:
		return c, fmt.Errorf("%w: address format %d (this app reads format %d)", ErrAddressVersion, b[0], AddressFormat)
	}
	if len(b) < addressFixedSize+1 {
		return c, fmt.Errorf("%w: %d bytes is too short", ErrCorruptedAddress, len(b))
	}
	if !checksumOK(b) {
		return c, fmt.Errorf("%w: its checksum does not match (was it cut or changed?)", ErrCorruptedAddress)
	}
	hostLen := int(b[35])
	if len(b) < addressFixedSize+hostLen {
		return c, fmt.Errorf("%w: length %d does not match its contents", ErrCorruptedAddress, len(b))
	}
	tagAt := addressFixedSize - checksumSize - 1 + hostLen
	c.Tag.Type = TagType(b[tagAt])
	tagData, known := tagDataSize(c.Tag.Type)
	if !known {
		return c, fmt.Errorf("%w: it is a kind of address this app does not know (tag %#x)", ErrAddressVersion, b[tagAt])
	}
	if len(b) != addressFixedSize+hostLen+tagData {
		return c, fmt.Errorf("%w: length %d does not match its contents", ErrCorruptedAddress, len(b))
	}
	c.Versions = VersionRange{Min: b[1], Max: b[2]}
	if c.Versions.Min > c.Versions.Max || c.Versions.Min == 0 {
		return c, fmt.Errorf("%w: invalid version range %d-%d", ErrCorruptedAddress, c.Versions.Min, c.Versions.Max)
	}
	if !c.Versions.Intersects(ours) {
		if c.Versions.Min > ours.Max {
			return c, fmt.Errorf("%w: it needs version %d, this app speaks %d-%d", ErrAddressVersion, c.Versions.Min, ours.Min, ours.Max)
		}
		return c, fmt.Errorf("%w: it was made by an old app (version %d); ask for a new address", ErrAddressVersion, c.Versions.Max)
	}
	relay, rest := readRelay(b[3:]) // lengths were checked above
	c.Relay = relay
	rest = rest[copy(c.SenderID[:], rest):]
	rest = rest[copy(c.SenderSeed[:], rest):]
	rest = rest[copy(c.Key[:], rest):]
	copy(c.Tag.Group[:], rest[1:1+tagData])
	if err := checkRelayFields(c.Relay); err != nil {
		return c, fmt.Errorf("%w: %w", ErrAddressRelay, err)
	}
	if err := checkAddressKey(c.Key); err != nil {
		return c, err
	}
	return c, nil
}

// checkAddressKey refuses a key no request can be sealed to.
func checkAddressKey(k [KeySize]byte) error {
	pub, err := box.ParsePublicKey(k[:])
	if err == nil {
		probe, _ := box.PrivateKeyFromBytes(lowOrderProbe())
		_, err = box.Precompute(probe, pub)
	}
	if err != nil {
		return fmt.Errorf("%w: its key cannot be used (%w)", ErrCorruptedAddress, err)
	}
	return nil
}

// request is the plaintext of a contact request (SPEC.md).
type request struct {
	Version    byte
	Invitation []byte // the requester's invitation payload, before base64
	Info       []byte
	Tag        Tag
}

func (r request) encode() ([]byte, error) {
	if len(r.Invitation) < minInvitationSize || len(r.Invitation) > maxInvitationSize {
		return nil, fmt.Errorf("%w: %d-byte invitation", ErrMalformed, len(r.Invitation))
	}
	if len(r.Info) > MaxBody {
		return nil, fmt.Errorf("%w: info of %d bytes, the limit is %d", ErrTooLong, len(r.Info), MaxBody)
	}
	if !r.Tag.valid() {
		return nil, fmt.Errorf("%w: tag type %#x", ErrMalformed, byte(r.Tag.Type))
	}
	out := make([]byte, 0, requestFixedSize+len(r.Invitation)+len(r.Info)+GroupIDSize)
	out = append(out, typeRequest, r.Version)
	out = binary.BigEndian.AppendUint16(out, uint16(len(r.Invitation)))
	out = append(out, r.Invitation...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(r.Info)))
	out = append(out, r.Info...)
	return r.Tag.appendTo(out), nil
}

// decodeRequest parses a request plaintext; the slices alias b. It checks
// the layout only: the invitation is parsed by the receiver.
func decodeRequest(b []byte) (request, error) {
	var r request
	if len(b) < requestFixedSize || b[0] != typeRequest {
		return r, fmt.Errorf("%w: not a contact request", ErrMalformed)
	}
	r.Version = b[1]
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n < minInvitationSize || n > maxInvitationSize || len(b) < 4+n+2+1 {
		return r, fmt.Errorf("%w: contact request invitation of %d bytes", ErrMalformed, n)
	}
	r.Invitation = b[4 : 4+n]
	b = b[4+n:]
	m := int(binary.BigEndian.Uint16(b))
	if m > MaxBody || len(b) < 2+m+1 {
		return r, fmt.Errorf("%w: contact request info of %d bytes", ErrMalformed, m)
	}
	r.Info = b[2 : 2+m]
	b = b[2+m:]
	r.Tag.Type = TagType(b[0])
	size, known := tagDataSize(r.Tag.Type)
	if !known || len(b) != 1+size {
		return r, fmt.Errorf("%w: contact request tag", ErrMalformed)
	}
	copy(r.Tag.Group[:], b[1:])
	return r, nil
}

// sealRequest builds the SEND body of a request: a fresh ephemeral X25519
// key, then the box of the plaintext under X25519(ephemeral, address key).
// It reads the ephemeral key (32 bytes), then the nonce (24), from rand.
func sealRequest(rand io.Reader, key [KeySize]byte, plaintext []byte) ([]byte, error) {
	pub, err := box.ParsePublicKey(key[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptedAddress, err)
	}
	eph, err := box.GenerateKey(rand)
	if err != nil {
		return nil, err
	}
	shared, err := box.Precompute(eph, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptedAddress, err)
	}
	return sealQueue(rand, eph.PublicKey(), shared, plaintext)
}

// openRequest opens a request's SEND body with the address's private key.
func openRequest(priv box.PrivateKey, body []byte) (request, error) {
	eph, boxed, err := splitQueue(body)
	if err != nil {
		return request{}, fmt.Errorf("a contact request was dropped: %w", err)
	}
	shared, err := box.Precompute(priv, eph)
	if err != nil {
		return request{}, fmt.Errorf("a contact request was dropped: %w: %w", ErrMalformed, err)
	}
	pt, err := box.Open(shared, boxed)
	if err != nil {
		return request{}, fmt.Errorf("a contact request was dropped: %w: %w", ErrMalformed, err)
	}
	r, err := decodeRequest(pt)
	if err != nil {
		return request{}, fmt.Errorf("a contact request was dropped: %w", err)
	}
	return r, nil
}

// requestHashID names a request by its invitation: hex of the first 12
// bytes of SHA-256(invitation payload). Repeats of a request share it.
func requestHashID(invitation []byte) string {
	h := sha256.Sum256(invitation)
	return hex.EncodeToString(h[:requestIDSize])
}

// Request is a contact request waiting for the owner's answer.
type Request struct {
	// ID names the request in AcceptRequest and RejectRequest: its
	// arrival number (20 digits), '-', and its hash ID.
	ID string
	// Info is the requester's info (their profile, opaque to the agent).
	Info     []byte
	Tag      Tag
	Received time.Time
}

// AddressEvents is implemented by an Events implementation that wants
// to hear about contact requests; the agent checks for it with a type
// assertion, so implementing it is optional.
type AddressEvents interface {
	// ContactRequest: a new request arrived and is stored.
	ContactRequest(req Request)
	// RequestDropped: a waiting request was dropped because MaxRequests
	// newer ones arrived.
	RequestDropped(req Request)
}

// AddressInfo describes the profile's own address.
type AddressInfo struct {
	Address ContactAddress
	// Enabled: new requests are kept and shown. When off, requests that
	// arrive are dropped unseen and nobody is told; the link stays valid.
	Enabled bool
	Created time.Time
}

// addressRecord is the owner's address: record addr/state.
type addressRecord struct {
	V       int       `json:"v"`
	Created time.Time `json:"created"`
	Enabled bool      `json:"enabled"`
	// Queue is the address queue; its QueueKey is the X25519 key that
	// requests are encrypted to.
	Queue      rcvQueue `json:"queue"`
	SenderSeed []byte   `json:"sender_seed"`
	Tag        []byte   `json:"tag"`
	// Seen lists the hash IDs of requests answered or dropped, oldest
	// first, at most MaxSeenRequests: repeats of them are ignored.
	Seen []string `json:"seen,omitempty"`
}

// requestRecord is a waiting request: record addr/req/<Request.ID>.
type requestRecord struct {
	V          int       `json:"v"`
	Invitation []byte    `json:"invitation"`
	Info       []byte    `json:"info"`
	Tag        []byte    `json:"tag"`
	Received   time.Time `json:"received"`
}

const addressRecordVersion = 1

// Record keys (SPEC.md, "Contact address", "Local state").
const (
	addrDir      store.Key = "addr"
	addrStateKey store.Key = "addr/state"
	addrReqDir   store.Key = "addr/req"
)

func (a *Agent) loadAddress() (*addressRecord, error) {
	b, err := a.store.Get(addrStateKey)
	if err != nil {
		return nil, err
	}
	var r addressRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("agent: address record: %w", err)
	}
	if r.V != addressRecordVersion {
		return nil, fmt.Errorf("agent: address record version %d", r.V)
	}
	return &r, nil
}

func (a *Agent) saveAddress(r *addressRecord) error {
	r.V = addressRecordVersion
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return a.store.Put(addrStateKey, b)
}

func parseStoredTag(b []byte) Tag {
	var t Tag
	if len(b) > 0 {
		t.Type = TagType(b[0])
		copy(t.Group[:], b[1:])
	}
	return t
}

// address returns the link contents of r.
func (r *addressRecord) address() (ContactAddress, error) {
	relay, err := wire.ParseAddress(r.Queue.Relay)
	if err != nil {
		return ContactAddress{}, err
	}
	key, err := box.PrivateKeyFromBytes(r.Queue.QueueKey)
	if err != nil {
		return ContactAddress{}, err
	}
	if len(r.SenderSeed) != seedSize {
		return ContactAddress{}, errors.New("agent: bad address sender key")
	}
	return ContactAddress{
		Versions: Versions, Relay: relay, SenderID: r.Queue.SndID, SenderSeed: [seedSize]byte(r.SenderSeed),
		Key: [KeySize]byte(key.PublicKey().Bytes()), Tag: parseStoredTag(r.Tag),
	}, nil
}

// newAddressQueue creates an address queue on relay and secures it with a
// fresh address sender key (SPEC.md: why the address queue is secured).
func (a *Agent) newAddressQueue(ctx context.Context, relay wire.Address, tag Tag) (*addressRecord, error) {
	if !tag.valid() {
		return nil, fmt.Errorf("%w: tag type %#x", ErrAddressVersion, byte(tag.Type))
	}
	q, err := a.newRcvQueue(ctx, relay)
	if err != nil {
		return nil, err
	}
	sender, seed, err := newAuthKey()
	if err != nil {
		return nil, err
	}
	if err := a.tr.secure(ctx, relay, q.SndID, sender); err != nil {
		if _, sub, serr := q.subscription(); serr == nil {
			_ = a.tr.deleteQueue(context.WithoutCancel(ctx), relay, sub)
		}
		return nil, fmt.Errorf("securing the address queue: %w", err)
	}
	return &addressRecord{Created: time.Now().UTC(), Enabled: true, Queue: q, SenderSeed: seed, Tag: tag.appendTo(nil)}, nil
}

// dropAddressQueue deletes an address queue on its relay; a queue the
// relay no longer has (AUTH) counts as deleted.
func (a *Agent) dropAddressQueue(ctx context.Context, r *addressRecord) error {
	relay, sub, err := r.Queue.subscription()
	if err != nil {
		return err
	}
	if err := a.tr.deleteQueue(ctx, relay, sub); err != nil && !errors.Is(err, wire.CodeAuth) {
		return fmt.Errorf("deleting the address queue on the relay: %w", err)
	}
	return nil
}

// addressExists reports whether the profile has an address; a.mu held.
func (a *Agent) addressExists() (bool, error) {
	if a.closed {
		return false, ErrClosed
	}
	return a.store.Has(addrStateKey)
}

// CreateAddress creates the profile's contact address on relay, turned
// on. There is at most one: with one already, it fails with
// ErrAddressExists (ReplaceAddress replaces it). tag is TagNone for a
// person's address.
func (a *Agent) CreateAddress(ctx context.Context, relay wire.Address, tag Tag) (AddressInfo, error) {
	a.mu.Lock()
	exists, err := a.addressExists()
	a.mu.Unlock()
	if err != nil {
		return AddressInfo{}, err
	}
	if exists {
		return AddressInfo{}, ErrAddressExists
	}
	r, err := a.newAddressQueue(ctx, relay, tag)
	if err != nil {
		return AddressInfo{}, err
	}
	a.mu.Lock()
	if exists, err = a.addressExists(); err == nil && !exists {
		err = a.saveAddress(r)
	} else if err == nil {
		err = ErrAddressExists // created meanwhile
	}
	a.mu.Unlock()
	if err != nil {
		_ = a.dropAddressQueue(context.WithoutCancel(ctx), r)
		return AddressInfo{}, err
	}
	return a.startAddress(ctx, r)
}

// startAddress subscribes a new address queue and describes it.
func (a *Agent) startAddress(ctx context.Context, r *addressRecord) (AddressInfo, error) {
	relay, sub, err := r.Queue.subscription()
	if err != nil {
		return AddressInfo{}, err
	}
	if err := a.tr.subscribe(ctx, relay, sub); err != nil {
		// Remembered by the relay pool: it subscribes when the relay is back.
		a.ev.Problem("", fmt.Errorf("subscribing to the contact address: %w", err))
	}
	addr, err := r.address()
	return AddressInfo{Address: addr, Enabled: r.Enabled, Created: r.Created}, err
}

// ReplaceAddress gives the profile a new address on relay, turned on, and
// deletes the old one's queue, so that the old link stops working.
// Requests waiting for an answer stay; contacts are not affected. If the
// old queue cannot be deleted (its relay is unreachable), nothing changes.
func (a *Agent) ReplaceAddress(ctx context.Context, relay wire.Address, tag Tag) (AddressInfo, error) {
	old, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return AddressInfo{}, ErrNoAddress
	}
	if err != nil {
		return AddressInfo{}, err
	}
	r, err := a.newAddressQueue(ctx, relay, tag)
	if err != nil {
		return AddressInfo{}, err
	}
	if err := a.dropAddressQueue(ctx, old); err != nil {
		_ = a.dropAddressQueue(context.WithoutCancel(ctx), r)
		return AddressInfo{}, err
	}
	a.mu.Lock()
	cur, err := a.loadAddress()
	if err == nil && cur.Queue.RcvID != old.Queue.RcvID {
		err = errors.New("agent: the contact address changed meanwhile")
	}
	if err == nil {
		r.Seen = cur.Seen
		err = a.saveAddress(r)
	}
	a.mu.Unlock()
	if err != nil {
		_ = a.dropAddressQueue(context.WithoutCancel(ctx), r)
		return AddressInfo{}, err
	}
	return a.startAddress(ctx, r)
}

// DeleteAddress deletes the address queue on its relay, then the address
// and the requests waiting for an answer. Contacts made through it are
// not affected; a request sent with the old link fails with
// ErrAddressGone. If the relay cannot be reached, nothing changes.
func (a *Agent) DeleteAddress(ctx context.Context) error {
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoAddress
	}
	if err != nil {
		return err
	}
	if err := a.dropAddressQueue(ctx, r); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, err := a.loadAddress()
	if err != nil || cur.Queue.RcvID != r.Queue.RcvID {
		return nil // deleted or replaced meanwhile
	}
	return a.store.DeleteAll(addrDir)
}

// SetAddressEnabled turns the address on or off. Off, requests that
// arrive are acknowledged and dropped without being stored or shown, and
// nobody is told (the requester sees their request as sent); the link
// keeps working, so turning it on again needs no new link. Requests
// already waiting stay.
func (a *Agent) SetAddressEnabled(on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoAddress
	}
	if err != nil {
		return err
	}
	if r.Enabled == on {
		return nil
	}
	r.Enabled = on
	return a.saveAddress(r)
}

// Address returns the profile's address, or ErrNoAddress.
func (a *Agent) Address() (AddressInfo, error) {
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return AddressInfo{}, ErrNoAddress
	}
	if err != nil {
		return AddressInfo{}, err
	}
	addr, err := r.address()
	return AddressInfo{Address: addr, Enabled: r.Enabled, Created: r.Created}, err
}

// appendAddressSub adds the address queue's subscription to subs (Start).
func (a *Agent) appendAddressSub(subs []relaySub) []relaySub {
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return subs
	}
	if err == nil {
		relay, sub, serr := r.Queue.subscription()
		if serr == nil {
			return append(subs, relaySub{relay, sub})
		}
		err = serr
	}
	a.ev.Problem("", fmt.Errorf("the contact address cannot be used: %w", err))
	return subs
}

// handleAddressMessage takes a message delivered on the address queue;
// ok is false for any other queue. It is called first by HandleMessage.
func (a *Agent) handleAddressMessage(rcvID wire.QueueID, m wire.Message) (ack, ok bool) {
	a.mu.Lock()
	_, conn := a.byRcv[rcvID]
	a.mu.Unlock()
	if conn {
		return false, false
	}
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return false, false
	}
	if err != nil {
		// Perhaps ours: keep it queued, the relay delivers it again.
		a.ev.Problem("", fmt.Errorf("reading the contact address: %w", err))
		return false, true
	}
	if r.Queue.RcvID != rcvID {
		return false, false
	}
	return a.receiveRequest(rcvID, r, m), true
}

// receiveRequest handles one message on the address queue; it returns
// whether to acknowledge it. A request is stored before it is
// acknowledged; anything malformed is reported, acknowledged and changes
// nothing.
func (a *Agent) receiveRequest(rcvID wire.QueueID, r *addressRecord, m wire.Message) bool {
	if m.Quota && len(m.Body) == 0 {
		return true // the relay's quota marker: senders were refused, nothing is lost here
	}
	if !r.Enabled {
		return true // off: dropped unseen
	}
	priv, err := box.PrivateKeyFromBytes(r.Queue.QueueKey)
	if err != nil {
		a.ev.Problem("", err)
		return false
	}
	req, err := openRequest(priv, m.Body)
	if err == nil {
		err = a.checkRequest(r, req)
	}
	if err != nil {
		a.ev.Problem("", err)
		return true
	}
	hid := requestHashID(req.Invitation)
	a.mu.Lock()
	added, dropped, err := a.storeRequest(rcvID, hid, req)
	a.mu.Unlock()
	if err != nil {
		a.ev.Problem("", fmt.Errorf("storing a contact request: %w", err))
		return false // not stored: the relay delivers it again
	}
	if ev, ok := a.ev.(AddressEvents); ok {
		for _, d := range dropped {
			ev.RequestDropped(d)
		}
		if added != nil {
			ev.ContactRequest(*added)
		}
	}
	return true
}

// checkRequest validates an opened request against the address.
func (a *Agent) checkRequest(r *addressRecord, req request) error {
	if req.Version < Versions.Min || req.Version > Versions.Max {
		return fmt.Errorf("a contact request was dropped: %w: version %d", ErrMalformed, req.Version)
	}
	if !slices.Equal(req.Tag.appendTo(nil), r.Tag) {
		return fmt.Errorf("a contact request was dropped: %w: it names another tag", ErrMalformed)
	}
	inv, err := ParseLink(base64.RawURLEncoding.EncodeToString(req.Invitation), Versions)
	if err != nil {
		return fmt.Errorf("a contact request was dropped: %w: its invitation: %w", ErrMalformed, err)
	}
	if err := a.tr.check(inv.Relay); err != nil {
		return fmt.Errorf("a contact request was dropped: its invitation's relay: %w", err)
	}
	return nil
}

// storeRequest stores a new request unless it is a repeat, and drops the
// oldest beyond MaxRequests; a.mu held. It reads the address again, so
// that a request racing with an answer, a change or a deletion is judged
// on the latest state.
func (a *Agent) storeRequest(rcvID wire.QueueID, hid string, req request) (added *Request, dropped []Request, err error) {
	r, err := a.loadAddress()
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, nil, err
	}
	if r.Queue.RcvID != rcvID || !r.Enabled || slices.Contains(r.Seen, hid) {
		return nil, nil, nil
	}
	keys, err := a.store.List(addrReqDir)
	if err != nil {
		return nil, nil, err
	}
	var next uint64 = 1
	for _, k := range keys {
		seq, h, ok := splitRequestID(k.Base())
		if !ok {
			continue
		}
		if h == hid {
			return nil, nil, nil // a repeat of a waiting request
		}
		next = max(next, seq+1)
	}
	id := fmt.Sprintf("%020d-%s", next, hid)
	rec := requestRecord{V: addressRecordVersion, Invitation: req.Invitation, Info: req.Info, Tag: req.Tag.appendTo(nil), Received: time.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, err
	}
	if err := a.store.Put(addrReqDir.Join(id), b); err != nil {
		return nil, nil, err
	}
	added = &Request{ID: id, Info: rec.Info, Tag: req.Tag, Received: rec.Received}
	keys = append(keys, addrReqDir.Join(id))
	var drop []store.Key
	for len(keys)-len(drop) > MaxRequests {
		k := keys[len(drop)]
		drop = append(drop, k)
		if old, err := a.loadRequest(k.Base()); err == nil {
			dropped = append(dropped, old)
		}
		if _, h, ok := splitRequestID(k.Base()); ok {
			r.Seen = appendSeen(r.Seen, h)
		}
	}
	if len(drop) == 0 {
		return added, nil, nil
	}
	// Remember them before they go, so that a repeat is not shown again.
	if err := a.saveAddress(r); err != nil {
		a.ev.Problem("", fmt.Errorf("dropping old contact requests: %w", err))
		return added, nil, nil
	}
	for _, k := range drop {
		_ = a.store.Delete(k)
	}
	return added, dropped, nil
}

func appendSeen(seen []string, hid string) []string {
	if slices.Contains(seen, hid) {
		return seen
	}
	seen = append(seen, hid)
	if n := len(seen) - MaxSeenRequests; n > 0 {
		seen = slices.Delete(seen, 0, n)
	}
	return seen
}

// splitRequestID splits a request ID into its arrival number and hash ID.
func splitRequestID(id string) (uint64, string, bool) {
	seq, h, ok := strings.Cut(id, "-")
	if !ok || len(seq) != 20 || len(h) != 2*requestIDSize {
		return 0, "", false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0, "", false
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return 0, "", false
	}
	return n, h, true
}

func (a *Agent) loadRequest(id string) (Request, error) {
	rec, err := a.loadRequestRecord(id)
	if err != nil {
		return Request{}, err
	}
	return Request{ID: id, Info: rec.Info, Tag: parseStoredTag(rec.Tag), Received: rec.Received}, nil
}

// Requests lists the requests waiting for an answer, oldest first.
func (a *Agent) Requests() ([]Request, error) {
	keys, err := a.store.List(addrReqDir)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(keys))
	for _, k := range keys {
		r, err := a.loadRequest(k.Base())
		if errors.Is(err, ErrNoRequest) {
			continue // answered meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// forgetRequest removes an answered request, remembering its hash ID
// first so that a repeat of it is ignored.
func (a *Agent) forgetRequest(id string) error {
	_, hid, _ := splitRequestID(id)
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.loadAddress()
	if err == nil {
		r.Seen = appendSeen(r.Seen, hid)
		err = a.saveAddress(r)
	} else if errors.Is(err, store.ErrNotFound) {
		err = nil // the address was deleted: nothing to repeat to
	}
	if err != nil {
		return err
	}
	return a.store.Delete(addrReqDir.Join(id))
}

// AcceptRequest accepts a waiting request: it joins the requester's
// one-time invitation with our queue on relay and info (our profile),
// exactly as Join does, so the new connection shares nothing with the
// address. The request is then forgotten. If the requester withdrew it
// (their invitation is gone), it fails with ErrNoRequest and forgets it;
// on other errors (a relay unreachable) the request stays.
func (a *Agent) AcceptRequest(ctx context.Context, id string, relay wire.Address, info []byte) (ConnID, error) {
	b, err := a.loadRequestRecord(id)
	if err != nil {
		return "", err
	}
	inv, err := ParseLink(base64.RawURLEncoding.EncodeToString(b.Invitation), Versions)
	if err != nil {
		_ = a.forgetRequest(id)
		return "", fmt.Errorf("%w: its invitation does not parse: %w", ErrNoRequest, err)
	}
	cid, err := a.Join(ctx, inv, relay, info)
	if errors.Is(err, ErrInvitationUsed) {
		_ = a.forgetRequest(id)
		return "", fmt.Errorf("%w: the requester withdrew it (%w)", ErrNoRequest, err)
	}
	if err != nil {
		return "", err
	}
	if err := a.forgetRequest(id); err != nil {
		a.ev.Problem(cid, fmt.Errorf("forgetting an accepted contact request: %w", err))
	}
	return cid, nil
}

func (a *Agent) loadRequestRecord(id string) (*requestRecord, error) {
	if _, _, ok := splitRequestID(id); !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoRequest, id)
	}
	b, err := a.store.Get(addrReqDir.Join(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoRequest, id)
	}
	if err != nil {
		return nil, err
	}
	var rec requestRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("agent: request record: %w", err)
	}
	return &rec, nil
}

// RejectRequest forgets a waiting request. The requester is not told:
// their side keeps showing the request as sent, and their one-time
// invitation waits until they cancel it.
func (a *Agent) RejectRequest(id string) error {
	if _, err := a.loadRequestRecord(id); err != nil {
		return err
	}
	return a.forgetRequest(id)
}

// RequestContact asks the owner of addr to connect: it creates a one-time
// invitation on relay (the connection, in state invited, is returned) and
// sends it with info (our profile) to the address queue, signed with the
// address sender key. When the owner accepts, the connection proceeds as
// for any invitation. If the request cannot be sent, the invitation is
// cancelled and nothing is left: ErrAddressGone when the address queue
// refused it (deleted or replaced), the relay's error otherwise.
func (a *Agent) RequestContact(ctx context.Context, addr ContactAddress, relay wire.Address, info []byte) (ConnID, error) {
	if len(info) > MaxBody {
		return "", fmt.Errorf("%w: info of %d bytes, the limit is %d", ErrTooLong, len(info), MaxBody)
	}
	if !addr.Tag.valid() {
		return "", fmt.Errorf("%w: tag type %#x", ErrAddressVersion, byte(addr.Tag.Type))
	}
	if !addr.Versions.Intersects(Versions) {
		return "", fmt.Errorf("%w: versions %d-%d", ErrAddressVersion, addr.Versions.Min, addr.Versions.Max)
	}
	if err := a.tr.check(addr.Relay); err != nil {
		return "", err
	}
	if err := checkAddressKey(addr.Key); err != nil {
		return "", err
	}
	if own, err := a.loadAddress(); err == nil && own.Queue.SndID == addr.SenderID {
		return "", ErrOwnAddress
	}
	cid, inv, err := a.CreateInvitation(ctx, relay, info)
	if err != nil {
		return "", err
	}
	cancel := func() {
		dctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer stop()
		if err := a.Delete(dctx, cid); err != nil {
			a.ev.Problem(cid, fmt.Errorf("cancelling the invitation of a request that failed: %w", err))
		}
	}
	body, err := a.requestBody(addr, inv, info)
	if err != nil {
		cancel()
		return "", err
	}
	err = a.tr.send(ctx, addr.Relay, addr.SenderID, ed25519.NewKeyFromSeed(addr.SenderSeed[:]), body)
	if err != nil {
		cancel()
		if errors.Is(err, wire.CodeAuth) {
			return "", fmt.Errorf("%w: %w", ErrAddressGone, err)
		}
		return "", fmt.Errorf("sending the contact request: %w", err)
	}
	return cid, nil
}

// requestBody seals a request carrying inv and info to addr.
func (a *Agent) requestBody(addr ContactAddress, inv Invitation, info []byte) ([]byte, error) {
	p, err := inv.Payload()
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, err
	}
	pt, err := request{Version: min(addr.Versions.Max, Versions.Max), Invitation: raw, Info: info, Tag: addr.Tag}.encode()
	if err != nil {
		return nil, err
	}
	return sealRequest(a.rand, addr.Key, pt)
}
