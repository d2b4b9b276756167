// Package api is the RPC surface of the Wisp core: the methods the page
// calls through the worker (see web/rpc.js) and the events it receives.
// It builds and tests natively; the wasm main package installs it on the
// JavaScript side with package bridge.
//
//	svc := api.New(fsOpener, emit)
//	router := rpc.NewRouter()
//	svc.Register(router)
//	// "init" opens storage; then "profile.create", "profile.unlock", ...
//
// One profile is active at a time in a worker; the Web Lock in the page
// guarantees that one tab drives a profile.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/hack-pad/hackpadfs"
	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/server/wire/client"
	"github.com/wisp-chat/wisp/wasm/agent"
	"github.com/wisp-chat/wisp/wasm/buildinfo"
	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/files"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// Error codes of the API, beyond those of package rpc.
const (
	CodeWrongPassphrase rpc.Code = "wrong_passphrase"
	CodeInvitationUsed  rpc.Code = "invitation_used"
	CodeNotWispLink     rpc.Code = "not_wisp_link"
	CodeLinkCorrupted   rpc.Code = "link_corrupted"
	CodeLinkVersion     rpc.Code = "link_version"
	CodeLinkRelay       rpc.Code = "link_relay"
	CodeLocalRelay      rpc.Code = "relay_local"
	CodeTooLong         rpc.Code = "too_long"
	CodeInvalid         rpc.Code = "invalid"
	CodeNoRelay         rpc.Code = "no_relay"
	CodeNoContact       rpc.Code = "no_contact"
	CodeNoProfile       rpc.Code = "no_profile"
	CodeLocked          rpc.Code = "locked"
	CodeNotReady        rpc.Code = "not_ready"
	CodeUnreachable     rpc.Code = "relay_unreachable"
	CodeRelayBusy       rpc.Code = "relay_busy"
	CodeRelayFull       rpc.Code = "relay_full"
	CodeFileCorrupted   rpc.Code = "file_corrupted"
	CodeFileExpired     rpc.Code = "file_expired"
	CodeNotSameFile     rpc.Code = "not_same_file"
	CodeFileUnreadable  rpc.Code = "file_unreadable"
	CodeGroupFull       rpc.Code = "group_full"
	CodeNotAllowed      rpc.Code = "not_allowed"
	CodeNoGroup         rpc.Code = "no_group"
	CodeNoMember        rpc.Code = "no_member"
	CodeGroupClosed     rpc.Code = "group_closed"
	CodeContactLeft     rpc.Code = "contact_left"
)

// Error codes of the contact address (address.go).
const (
	CodeNotAddress       rpc.Code = "not_wisp_address"
	CodeAddressCorrupted rpc.Code = "address_corrupted"
	CodeAddressVersion   rpc.Code = "address_version"
	CodeAddressRelay     rpc.Code = "address_relay"
	CodeAddressGone      rpc.Code = "address_gone"
	CodeOwnAddress       rpc.Code = "own_address"
	CodeNoAddress        rpc.Code = "no_address"
	CodeAddressExists    rpc.Code = "address_exists"
	CodeNoRequest        rpc.Code = "no_request"
)

// errorCodes maps sentinel errors to codes, most specific first.
var errorCodes = []struct {
	err  error
	code rpc.Code
}{
	{chat.ErrWrongPassphrase, CodeWrongPassphrase},
	// The contact address, before the invitation errors: accepting a
	// withdrawn request wraps ErrInvitationUsed too.
	{agent.ErrNoRequest, CodeNoRequest},
	{agent.ErrAddressGone, CodeAddressGone},
	{agent.ErrOwnAddress, CodeOwnAddress},
	{agent.ErrNoAddress, CodeNoAddress},
	{agent.ErrAddressExists, CodeAddressExists},
	{agent.ErrNotAddress, CodeNotAddress},
	{agent.ErrCorruptedAddress, CodeAddressCorrupted},
	{agent.ErrAddressVersion, CodeAddressVersion},
	{agent.ErrAddressRelay, CodeAddressRelay},
	{agent.ErrInvitationUsed, CodeInvitationUsed},
	{agent.ErrNotWispLink, CodeNotWispLink},
	{agent.ErrCorruptedLink, CodeLinkCorrupted},
	{agent.ErrUnsupportedVersion, CodeLinkVersion},
	{agent.ErrLinkRelay, CodeLinkRelay},
	{agent.ErrLocalRelay, CodeLocalRelay},
	{chat.ErrContactLeft, CodeContactLeft},
	// Group errors before ErrInvalid: a refused change wraps both.
	{chat.ErrGroupClosed, CodeGroupClosed},
	{chat.ErrGroupFull, CodeGroupFull},
	{chat.ErrNotAllowed, CodeNotAllowed},
	{chat.ErrNoGroup, CodeNoGroup},
	{chat.ErrNoMember, CodeNoMember},
	{chat.ErrTooLong, CodeTooLong},
	{chat.ErrInvalid, CodeInvalid},
	{chat.ErrNoRelay, CodeNoRelay},
	{chat.ErrNoContact, CodeNoContact},
	{chat.ErrNoProfile, CodeNoProfile},
	{chat.ErrLocked, CodeLocked},
	{files.ErrCorrupted, CodeFileCorrupted},
	{files.ErrExpired, CodeFileExpired},
	{files.ErrNotSameFile, CodeNotSameFile},
	{rpc.ErrUnreadable, CodeFileUnreadable},
	{agent.ErrNotConnected, CodeNotReady},
	{context.DeadlineExceeded, CodeUnreachable},
	{context.Canceled, rpc.CodeCanceled},
	{client.ErrConnectionLost, CodeUnreachable},
	// What a relay refuses for a while: its rate limits, and its storage.
	{wire.CodeLimit, CodeRelayBusy},
	{wire.CodeFull, CodeRelayFull},
	{wire.CodeQuota, CodeRelayFull},
}

// coded wraps err with its API code so the page can branch on it.
func coded(err error) error {
	if err == nil {
		return nil
	}
	var re *rpc.Error
	if errors.As(err, &re) {
		return err
	}
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return rpc.Errorf(ec.code, "%w", err)
		}
	}
	return err
}

// OpenFS opens the storage of the core (IndexedDB in the browser).
type OpenFS func(ctx context.Context) (hackpadfs.FS, error)

// Emit sends an event to the page.
type Emit func(name string, data any)

// Service holds the core's state between calls.
type Service struct {
	openFS OpenFS
	emit   Emit
	client client.Options
	// origin, when pinned, is the origin the core was loaded from; init's
	// Origin parameter is then ignored.
	origin string

	mu         sync.Mutex
	manager    *chat.Manager
	active     *chat.Profile
	id         string
	readers    map[int]io.Reader // files opened for saving
	nextHandle int
	cancels    map[string]context.CancelFunc // transfers in progress, by transfer ID
}

// track registers a cancellable transfer; the returned func ends it.
func (s *Service) track(ctx context.Context, id string) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if s.cancels == nil {
		s.cancels = map[string]context.CancelFunc{}
	}
	s.cancels[id] = cancel
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		delete(s.cancels, id)
		s.mu.Unlock()
		cancel()
	}
}

// New returns a Service.
func New(openFS OpenFS, emit Emit, opts client.Options) *Service {
	return &Service{openFS: openFS, emit: emit, client: opts}
}

// PinOrigin sets the origin the core itself was loaded from (the worker's
// location), which then decides instead of the page's word what goes into
// invitation links and whether relays on loopback and private addresses
// may be used (only from a page on this machine: see chat.Config.Origin).
// Call it before Register.
func (s *Service) PinOrigin(origin string) { s.origin = origin }

// Close locks every profile.
func (s *Service) Close() {
	s.mu.Lock()
	m := s.manager
	s.manager, s.active = nil, nil
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

func (s *Service) mgr() (*chat.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manager == nil {
		return nil, rpc.Errorf(CodeNotReady, "the core is not initialised")
	}
	return s.manager, nil
}

func (s *Service) profile() (*chat.Profile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return nil, rpc.Errorf(CodeLocked, "no profile is unlocked")
	}
	return s.active, nil
}

// InitParams configure the core.
type InitParams struct {
	Origin string   `json:"origin"`
	Relays []string `json:"relays"`
}

// InitResult lists the profiles found in storage.
type InitResult struct {
	Profiles []chat.ProfileSummary `json:"profiles"`
}

// NewProfileParams create a profile.
type NewProfileParams struct {
	Name       string `json:"name"`
	Avatar     []byte `json:"avatar,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

// UnlockParams unlock a profile.
type UnlockParams struct {
	ID         string `json:"id"`
	Passphrase string `json:"passphrase,omitempty"`
}

// IDParams name a profile or a contact.
type IDParams struct {
	ID string `json:"id"`
}

// ChangeRelayParams move a contact's receiving queue to Relay (one of
// the profile's relays).
type ChangeRelayParams struct {
	ID    string `json:"id"`
	Relay string `json:"relay"`
}

// RelaysParams set the profile's relays.
type RelaysParams struct {
	Relays  []string `json:"relays"`
	Receive string   `json:"receive"`
}

// RoutingParams turn private routing on or off.
type RoutingParams struct {
	Private bool `json:"private"`
}

// InviteParams create an invitation.
type InviteParams struct {
	Incognito bool `json:"incognito,omitempty"`
	// Name is ours only ("for Alice"): Contact.InviteName.
	Name string `json:"name,omitempty"`
}

// JoinParams join an invitation.
type JoinParams struct {
	Link      string `json:"link"`
	Incognito bool   `json:"incognito,omitempty"`
}

// RenameParams rename a contact.
type RenameParams struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// SendParams send a text message.
type SendParams struct {
	Contact string `json:"contact"`
	Text    string `json:"text"`
	ReplyTo uint64 `json:"reply_to,omitempty"` // the position of the message it quotes (one-to-one chats)
}

// PageParams page through a conversation.
type PageParams struct {
	Contact string `json:"contact"`
	Before  uint64 `json:"before,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// ExportParams export the unlocked profile.
type ExportParams struct {
	Passphrase string `json:"passphrase"`
}

// ExportResult is a backup file.
type ExportResult struct {
	Data []byte `json:"data"`
}

// ImportParams import a backup file as a new profile.
type ImportParams struct {
	Data          []byte `json:"data"`
	Passphrase    string `json:"passphrase"`
	NewPassphrase string `json:"new_passphrase,omitempty"`
}

// FileSendParams send the call's attachment as a file.
type FileSendParams struct {
	Contact   string `json:"contact"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Thumbnail []byte `json:"thumbnail,omitempty"`
	// Caption is shown with the file (one-to-one chats; ≤ chat.MaxCaption bytes).
	Caption string `json:"caption,omitempty"`
	// Transfer names this upload in "transfer" progress events.
	Transfer string `json:"transfer"`
	// Upload names the upload for file.resume and file.discard if it is
	// interrupted (8 to 64 characters of [A-Za-z0-9_-], e.g. a UUID);
	// empty: a random one. Modified is the file's lastModified.
	Upload   string `json:"upload,omitempty"`
	Modified int64  `json:"modified,omitempty"`
}

// UploadParams name an unfinished upload (file.resume, file.discard).
type UploadParams struct {
	Contact string `json:"contact"`
	Upload  string `json:"upload"`
	// Transfer names the resumed upload in "transfer" progress events.
	Transfer string `json:"transfer,omitempty"`
}

// TransferParams name a transfer to cancel: an upload's Transfer, or
// "<contact>/<seq>" for a download.
type TransferParams struct {
	Transfer string `json:"transfer"`
}

// FileParams name a file message.
type FileParams struct {
	Contact string `json:"contact"`
	Seq     uint64 `json:"seq"`
}

// ReadParams read the next bytes of an opened file.
type ReadParams struct {
	Handle int `json:"handle"`
}

// OpenResult is an opened file.
type OpenResult struct {
	Handle int           `json:"handle"`
	File   chat.FileMeta `json:"file"`
}

// Transfer is a progress event of an upload or download, in bytes of the
// file: Total is its size.
type Transfer struct {
	ID    string `json:"id"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// ReadSize is how much one file.read returns, except at the end: a
// shorter result (possibly empty) is the last, and comes only after the
// whole file matched its description.
const ReadSize = 1 << 20

// progress returns a callback emitting "transfer" events at most every
// 100 ms, and always the last one.
func (s *Service) progress(id string) chat.Progress {
	var last time.Time
	return func(done, total int64) {
		if now := time.Now(); done == total || now.Sub(last) >= 100*time.Millisecond {
			last = now
			s.emit("transfer", Transfer{ID: id, Done: done, Total: total})
		}
	}
}

// GroupParams create a group (group.create) or change its profile
// (group.update, with ID).
type GroupParams struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Picture     []byte `json:"picture,omitempty"`
	// Incognito (group.create): appear in the group under a random name.
	Incognito bool `json:"incognito,omitempty"`
}

// GroupInviteParams invite a connected contact to a group with a role.
type GroupInviteParams struct {
	Group   string    `json:"group"`
	Contact string    `json:"contact"`
	Role    chat.Role `json:"role"`
}

// GroupJoinParams accept a group invitation (the entry's ID).
type GroupJoinParams struct {
	ID        string `json:"id"`
	Incognito bool   `json:"incognito,omitempty"`
}

// GroupSendParams send a text message to a group.
type GroupSendParams struct {
	Group string `json:"group"`
	Text  string `json:"text"`
}

// MemberParams name a member of a group (member.code, member.remove).
type MemberParams struct {
	Group  string `json:"group"`
	Member string `json:"member"`
}

// MemberRoleParams change a member's role.
type MemberRoleParams struct {
	Group  string    `json:"group"`
	Member string    `json:"member"`
	Role   chat.Role `json:"role"`
}

// MemberVerifyParams mark a member verified, or not.
type MemberVerifyParams struct {
	Group    string `json:"group"`
	Member   string `json:"member"`
	Verified bool   `json:"verified"`
}

// CodeResult is a contact's security code.
type CodeResult struct {
	Code string `json:"code"`
}

// networkTimeout bounds the calls that wait for relays, so that an
// unreachable relay gives the page a relay_unreachable error instead of a
// call that never returns.
const networkTimeout = 30 * time.Second

// timed wraps a handler with networkTimeout.
func timed[P, R any](fn func(context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	return func(ctx context.Context, p P) (R, error) {
		ctx, cancel := context.WithTimeout(ctx, networkTimeout)
		defer cancel()
		return fn(ctx, p)
	}
}

// maxImportParams bounds a backup import call: the backup limit in base64,
// plus room for the passphrases.
const maxImportParams = chat.MaxBackupSize/3*4 + 4096

// Memory is the core's memory use, from the Go runtime. In the browser
// Sys is the size of the wasm linear memory, which never shrinks: it is
// the peak of the session.
type Memory struct {
	HeapInuse uint64 `json:"heapInuse"` // bytes in live heap spans
	Sys       uint64 `json:"sys"`       // bytes obtained from the system
	NumGC     uint32 `json:"numGC"`
}

// Register installs every method on r.
func (s *Service) Register(r *rpc.Router) {
	rpc.Handle(r, "version", func(context.Context, rpc.None) (buildinfo.Info, error) {
		return buildinfo.Read(), nil
	})
	rpc.Handle(r, "memory", func(context.Context, rpc.None) (Memory, error) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return Memory{HeapInuse: ms.HeapInuse, Sys: ms.Sys, NumGC: ms.NumGC}, nil
	})
	rpc.Handle(r, "init", s.init)
	rpc.Handle(r, "profiles.list", func(context.Context, rpc.None) ([]chat.ProfileSummary, error) {
		m, err := s.mgr()
		if err != nil {
			return nil, err
		}
		list, err := m.Profiles()
		return list, coded(err)
	})
	rpc.Handle(r, "profile.create", func(ctx context.Context, p NewProfileParams) (IDParams, error) {
		m, err := s.mgr()
		if err != nil {
			return IDParams{}, err
		}
		id, err := m.CreateProfile(ctx, chat.NewProfile{DisplayName: p.Name, Avatar: p.Avatar, Passphrase: p.Passphrase})
		return IDParams{ID: id}, coded(err)
	})
	rpc.Handle(r, "profile.unlock", timed(s.unlock))
	rpc.Handle(r, "profile.check", func(_ context.Context, up UnlockParams) (rpc.None, error) {
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(m.CheckPassphrase(up.ID, up.Passphrase))
	})
	rpc.Handle(r, "backup.export", func(_ context.Context, ep ExportParams) (ExportResult, error) {
		m, err := s.mgr()
		if err != nil {
			return ExportResult{}, err
		}
		s.mu.Lock()
		id := s.id
		s.mu.Unlock()
		if id == "" {
			return ExportResult{}, rpc.Errorf(CodeLocked, "no profile is unlocked")
		}
		data, err := m.ExportBackup(id, ep.Passphrase)
		return ExportResult{Data: data}, coded(err)
	})
	rpc.Handle(r, "backup.import", func(ctx context.Context, ip ImportParams) (IDParams, error) {
		m, err := s.mgr()
		if err != nil {
			return IDParams{}, err
		}
		id, err := m.ImportBackup(ctx, ip.Data, ip.Passphrase, ip.NewPassphrase)
		return IDParams{ID: id}, coded(err)
	}, rpc.WithMaxParams(maxImportParams))
	rpc.Handle(r, "profile.lock", func(context.Context, rpc.None) (rpc.None, error) {
		s.mu.Lock()
		m, id := s.manager, s.id
		s.active, s.id = nil, ""
		s.mu.Unlock()
		if m != nil && id != "" {
			m.Lock(id)
		}
		return rpc.None{}, nil
	})
	rpc.Handle(r, "profile.delete", func(_ context.Context, p IDParams) (rpc.None, error) {
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		s.mu.Lock()
		if s.id == p.ID {
			s.active, s.id = nil, ""
		}
		s.mu.Unlock()
		return rpc.None{}, coded(m.DeleteProfile(p.ID))
	})
	rpc.Handle(r, "profile.info", func(context.Context, rpc.None) (chat.ProfileInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ProfileInfo{}, err
		}
		return p.Info(), nil
	})
	rpc.Handle(r, "relays.set", func(_ context.Context, rp RelaysParams) (chat.ProfileInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ProfileInfo{}, err
		}
		if err := p.SetRelays(rp.Relays, rp.Receive); err != nil {
			return chat.ProfileInfo{}, coded(err)
		}
		return p.Info(), nil
	})
	rpc.Handle(r, "routing.set", func(_ context.Context, rp RoutingParams) (chat.ProfileInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.ProfileInfo{}, err
		}
		if err := p.SetPrivateRouting(rp.Private); err != nil {
			return chat.ProfileInfo{}, coded(err)
		}
		return p.Info(), nil
	})
	rpc.Handle(r, "relay.check", func(_ context.Context, p IDParams) (rpc.None, error) {
		a, err := wire.ParseAddress(p.ID)
		if err != nil {
			return rpc.None{}, rpc.Errorf(CodeInvalid, "%w", err)
		}
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(m.CheckRelay(a))
	})
	rpc.Handle(r, "network.reconnect", func(context.Context, rpc.None) (rpc.None, error) {
		if p, err := s.profile(); err == nil {
			p.Reconnect()
		}
		return rpc.None{}, nil
	})
	rpc.Handle(r, "invite.create", timed(func(ctx context.Context, ip InviteParams) (chat.Invitation, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Invitation{}, err
		}
		inv, err := p.CreateNamedInvitation(ctx, ip.Incognito, ip.Name)
		return inv, coded(err)
	}))
	rpc.Handle(r, "link.check", func(_ context.Context, jp JoinParams) (rpc.None, error) {
		inv, err := agent.ParseLink(jp.Link, agent.Versions)
		if err != nil {
			return rpc.None{}, coded(err)
		}
		m, err := s.mgr()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(m.CheckRelay(inv.Relay))
	})
	rpc.Handle(r, "join", timed(func(ctx context.Context, jp JoinParams) (chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Contact{}, err
		}
		c, err := p.Join(ctx, jp.Link, jp.Incognito)
		return c, coded(err)
	}))
	rpc.Handle(r, "contacts.list", func(context.Context, rpc.None) ([]chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		list, err := p.Contacts()
		return list, coded(err)
	})
	rpc.Handle(r, "contact.get", func(_ context.Context, ip IDParams) (chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Contact{}, err
		}
		c, err := p.Contact(ip.ID)
		return c, coded(err)
	})
	rpc.Handle(r, "contact.rename", func(_ context.Context, rp RenameParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.RenameContact(rp.ID, rp.Name))
	})
	rpc.Handle(r, "contact.read", func(_ context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.MarkRead(ip.ID))
	})
	rpc.Handle(r, "contact.delete", timed(func(ctx context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.DeleteContact(ctx, ip.ID))
	}))
	rpc.Handle(r, "contact.queue", func(_ context.Context, ip IDParams) (chat.QueueInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.QueueInfo{}, err
		}
		q, err := p.ContactQueue(ip.ID)
		return q, coded(err)
	})
	rpc.Handle(r, "contact.change_relay", func(ctx context.Context, cp ChangeRelayParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.ChangeRelay(ctx, cp.ID, cp.Relay))
	})
	rpc.Handle(r, "contact.encryption", func(_ context.Context, ip IDParams) (chat.EncryptionInfo, error) {
		p, err := s.profile()
		if err != nil {
			return chat.EncryptionInfo{}, err
		}
		info, err := p.Encryption(ip.ID)
		return info, coded(err)
	})
	rpc.Handle(r, "contact.fix_connection", timed(func(ctx context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.FixConnection(ctx, ip.ID))
	}))
	rpc.Handle(r, "relays.usage", func(context.Context, rpc.None) ([]chat.RelayUse, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		return p.RelayUsage(), nil
	})
	rpc.Handle(r, "contact.code", func(_ context.Context, ip IDParams) (CodeResult, error) {
		p, err := s.profile()
		if err != nil {
			return CodeResult{}, err
		}
		code, err := p.SecurityCode(ip.ID)
		return CodeResult{Code: code}, coded(err)
	})
	rpc.Handle(r, "messages.send", func(ctx context.Context, sp SendParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		m, err := p.SendReply(ctx, sp.Contact, sp.Text, sp.ReplyTo)
		return m, coded(err)
	})
	rpc.Handle(r, "file.send", func(ctx context.Context, fp FileSendParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		a, ok := rpc.AttachmentFrom(ctx)
		if !ok {
			return chat.Message{}, rpc.Errorf(rpc.CodeBadRequest, "file.send needs the file as an attachment")
		}
		ctx, done := s.track(ctx, fp.Transfer)
		defer done()
		meta := chat.FileMeta{Name: fp.Name, Type: fp.Type, Size: a.Size(), Thumbnail: fp.Thumbnail, Caption: fp.Caption}
		var m chat.Message
		if fp.Upload == "" {
			m, err = p.SendFile(ctx, fp.Contact, meta, a, s.progress(fp.Transfer))
		} else {
			m, err = p.SendFileAs(ctx, fp.Contact, fp.Upload, fp.Modified, meta, a, s.progress(fp.Transfer))
		}
		return m, coded(err)
	})
	rpc.Handle(r, "file.uploads", func(_ context.Context, ip IDParams) ([]chat.PendingUpload, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		ups, err := p.PendingUploads(ip.ID)
		return ups, coded(err)
	})
	rpc.Handle(r, "file.resume", func(ctx context.Context, up UploadParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		a, ok := rpc.AttachmentFrom(ctx)
		if !ok {
			return chat.Message{}, rpc.Errorf(rpc.CodeBadRequest, "file.resume needs the file as an attachment")
		}
		ctx, done := s.track(ctx, up.Transfer)
		defer done()
		m, err := p.ResumeFile(ctx, up.Contact, up.Upload, a, a.Size(), s.progress(up.Transfer))
		return m, coded(err)
	})
	rpc.Handle(r, "file.discard", timed(func(ctx context.Context, up UploadParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.DiscardUpload(ctx, up.Contact, up.Upload))
	}))
	rpc.Handle(r, "file.cancel", func(_ context.Context, tp TransferParams) (rpc.None, error) {
		s.mu.Lock()
		cancel := s.cancels[tp.Transfer]
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		return rpc.None{}, nil
	})
	rpc.Handle(r, "file.download", func(ctx context.Context, fp FileParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		id := fmt.Sprintf("%s/%d", fp.Contact, fp.Seq)
		ctx, done := s.track(ctx, id)
		defer done()
		return rpc.None{}, coded(p.DownloadFile(ctx, fp.Contact, fp.Seq, s.progress(id)))
	})
	rpc.Handle(r, "file.open", func(_ context.Context, fp FileParams) (OpenResult, error) {
		p, err := s.profile()
		if err != nil {
			return OpenResult{}, err
		}
		rd, meta, err := p.OpenFile(fp.Contact, fp.Seq)
		if err != nil {
			return OpenResult{}, coded(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.nextHandle++
		if s.readers == nil {
			s.readers = map[int]io.Reader{}
		}
		s.readers[s.nextHandle] = rd
		return OpenResult{Handle: s.nextHandle, File: meta}, nil
	})
	rpc.Handle(r, "file.read", func(_ context.Context, rp ReadParams) (rpc.Binary, error) {
		s.mu.Lock()
		rd, ok := s.readers[rp.Handle]
		s.mu.Unlock()
		if !ok {
			return nil, rpc.Errorf(rpc.CodeBadRequest, "no open file %d", rp.Handle)
		}
		buf := make([]byte, ReadSize)
		n, err := io.ReadFull(rd, buf)
		if err == nil {
			return buf, nil
		}
		s.mu.Lock()
		delete(s.readers, rp.Handle)
		s.mu.Unlock()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return buf[:n], nil
		}
		return nil, coded(err)
	})
	s.registerGroups(r)
	s.registerMessages(r)
	s.registerProfile(r)
	s.registerAddress(r)
	rpc.Handle(r, "messages.page", func(_ context.Context, pp PageParams) ([]chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		msgs, err := p.Messages(pp.Contact, pp.Before, pp.Limit)
		return msgs, coded(err)
	})
}

func (s *Service) init(ctx context.Context, p InitParams) (InitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manager == nil {
		fsys, err := s.openFS(ctx)
		if err != nil {
			return InitResult{}, err
		}
		var relays []string
		for _, r := range p.Relays {
			if a, err := wire.ParseAddress(r); err == nil {
				relays = append(relays, a.String())
			}
		}
		origin := p.Origin
		if s.origin != "" {
			origin = s.origin
		}
		s.manager = chat.NewManager(fsys, chat.Config{Origin: origin, PresetRelays: relays, Client: s.client})
	}
	list, err := s.manager.Profiles()
	return InitResult{Profiles: list}, coded(err)
}

func (s *Service) unlock(ctx context.Context, up UnlockParams) (chat.ProfileInfo, error) {
	m, err := s.mgr()
	if err != nil {
		return chat.ProfileInfo{}, err
	}
	p, err := m.Unlock(ctx, up.ID, up.Passphrase, func(e chat.Event) { s.emit("chat", e) })
	if err != nil {
		return chat.ProfileInfo{}, coded(err)
	}
	s.mu.Lock()
	prev, prevID := s.active, s.id
	s.active, s.id = p, up.ID
	s.mu.Unlock()
	if prev != nil && prevID != up.ID {
		m.Lock(prevID)
	}
	return p.Info(), nil
}

// registerGroups installs the group methods. A group is an entry of the
// chat list (contacts.list, contact.get: Contact.Group is set); its
// conversation is read with messages.page, and an entry whose group ended
// for us is deleted with contact.delete. Events: "contact" for the entry,
// "message" and "status" for its messages, and "members" (Text: the
// group's entry ID) when its member list changed.
func (s *Service) registerGroups(r *rpc.Router) {
	rpc.Handle(r, "group.create", func(ctx context.Context, gp GroupParams) (chat.Contact, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Contact{}, err
		}
		c, err := p.CreateGroup(ctx, chat.GroupProfile{Name: gp.Name, Description: gp.Description, Picture: gp.Picture}, gp.Incognito)
		return c, coded(err)
	})
	rpc.Handle(r, "group.invite", timed(func(ctx context.Context, ip GroupInviteParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.InviteToGroup(ctx, ip.Group, ip.Contact, ip.Role))
	}))
	rpc.Handle(r, "group.join", timed(func(ctx context.Context, jp GroupJoinParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.JoinGroup(ctx, jp.ID, jp.Incognito))
	}))
	rpc.Handle(r, "group.decline", func(_ context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.DeclineGroup(ip.ID))
	})
	rpc.Handle(r, "group.send", func(ctx context.Context, sp GroupSendParams) (chat.Message, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Message{}, err
		}
		m, err := p.SendGroupText(ctx, sp.Group, sp.Text)
		return m, coded(err)
	})
	rpc.Handle(r, "group.info", func(_ context.Context, ip IDParams) (chat.Group, error) {
		p, err := s.profile()
		if err != nil {
			return chat.Group{}, err
		}
		g, err := p.GroupInfo(ip.ID)
		return g, coded(err)
	})
	rpc.Handle(r, "group.members", func(_ context.Context, ip IDParams) ([]chat.Member, error) {
		p, err := s.profile()
		if err != nil {
			return nil, err
		}
		ms, err := p.Members(ip.ID)
		return ms, coded(err)
	})
	rpc.Handle(r, "group.update", func(_ context.Context, gp GroupParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.UpdateGroup(gp.ID, chat.GroupProfile{Name: gp.Name, Description: gp.Description, Picture: gp.Picture}))
	})
	rpc.Handle(r, "group.leave", func(_ context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.LeaveGroup(ip.ID))
	})
	rpc.Handle(r, "group.delete", func(_ context.Context, ip IDParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.DeleteGroup(ip.ID))
	})
	rpc.Handle(r, "member.role", func(_ context.Context, mp MemberRoleParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.SetMemberRole(mp.Group, mp.Member, mp.Role))
	})
	rpc.Handle(r, "member.remove", func(_ context.Context, mp MemberParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.RemoveMember(mp.Group, mp.Member))
	})
	rpc.Handle(r, "member.code", func(_ context.Context, mp MemberParams) (CodeResult, error) {
		p, err := s.profile()
		if err != nil {
			return CodeResult{}, err
		}
		code, err := p.MemberSecurityCode(mp.Group, mp.Member)
		return CodeResult{Code: code}, coded(err)
	})
	rpc.Handle(r, "member.verify", func(_ context.Context, mp MemberVerifyParams) (rpc.None, error) {
		p, err := s.profile()
		if err != nil {
			return rpc.None{}, err
		}
		return rpc.None{}, coded(p.VerifyMember(mp.Group, mp.Member, mp.Verified))
	})
}
