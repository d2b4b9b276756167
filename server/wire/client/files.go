package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2" // backoff jitter only
	"sync"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// ErrChunkEncoding is returned when a saved SenderChunk or RecipientChunk
// does not decode.
var ErrChunkEncoding = errors.New("client: malformed chunk record")

// SenderChunk is what the sender keeps about one chunk it created: enough
// to upload it and to delete it. Persist it (MarshalBinary) before
// uploading so an interrupted upload can resume.
type SenderChunk struct {
	Class wire.ChunkClass
	SndID wire.ChunkID
	Key   ed25519.PrivateKey
}

// RecipientChunk is what one recipient needs to download and acknowledge
// a chunk. The sender puts it in the file description it sends end to end
// (MarshalBinary is its 89-byte form).
type RecipientChunk struct {
	Class  wire.ChunkClass
	RcvID  wire.ChunkID
	Key    ed25519.PrivateKey
	BoxKey [32]byte // relay↔recipient box key (wire.OpenChunk)
}

const (
	senderChunkSize    = 1 + wire.IDSize + ed25519.SeedSize
	recipientChunkSize = senderChunkSize + 32
)

// MarshalBinary encodes the chunk as class (1) || sender ID (24) || key
// seed (32).
func (s SenderChunk) MarshalBinary() ([]byte, error) {
	if !s.Class.Valid() || len(s.Key) != ed25519.PrivateKeySize {
		return nil, ErrChunkEncoding
	}
	b := append([]byte{byte(s.Class)}, s.SndID[:]...)
	return append(b, s.Key.Seed()...), nil
}

// UnmarshalSenderChunk decodes SenderChunk.MarshalBinary.
func UnmarshalSenderChunk(b []byte) (SenderChunk, error) {
	if len(b) != senderChunkSize || !wire.ChunkClass(b[0]).Valid() {
		return SenderChunk{}, ErrChunkEncoding
	}
	return SenderChunk{Class: wire.ChunkClass(b[0]), SndID: wire.ChunkID(b[1:]), Key: ed25519.NewKeyFromSeed(b[1+wire.IDSize:])}, nil
}

// MarshalBinary encodes the chunk as class (1) || recipient ID (24) ||
// key seed (32) || box key (32).
func (r RecipientChunk) MarshalBinary() ([]byte, error) {
	if !r.Class.Valid() || len(r.Key) != ed25519.PrivateKeySize {
		return nil, ErrChunkEncoding
	}
	b := append([]byte{byte(r.Class)}, r.RcvID[:]...)
	b = append(b, r.Key.Seed()...)
	return append(b, r.BoxKey[:]...), nil
}

// UnmarshalRecipientChunk decodes RecipientChunk.MarshalBinary.
func UnmarshalRecipientChunk(b []byte) (RecipientChunk, error) {
	if len(b) != recipientChunkSize || !wire.ChunkClass(b[0]).Valid() {
		return RecipientChunk{}, ErrChunkEncoding
	}
	o := 1 + wire.IDSize
	return RecipientChunk{
		Class: wire.ChunkClass(b[0]), RcvID: wire.ChunkID(b[1:]),
		Key: ed25519.NewKeyFromSeed(b[o : o+ed25519.SeedSize]), BoxKey: [32]byte(b[o+ed25519.SeedSize:]),
	}, nil
}

// PaddedRecipients is the recipient count FNEW carries for n real
// recipients: the next power of two.
func PaddedRecipients(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// FileClient is a reconnecting client of a relay's file store
// (wire.FilesPath). It is safe for concurrent use: commands from several
// goroutines are in flight together on one connection, each matched to
// its answer by correlation ID. When the connection drops, commands in
// flight fail with ErrConnectionLost (every file command can be retried:
// FPUT of the same bytes answers OK again), new commands wait for the
// next connection, and the client reconnects with jittered backoff.
type FileClient struct {
	addr   wire.Address
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	cn *fileConn     // nil while disconnected
	up chan struct{} // closed when cn is set

	routes routes // private routing through this relay (files_proxy.go)
}

// DialFiles connects to the relay's file endpoint; the first connection
// must succeed. Options are those of Dial (EventBuffer is unused).
func DialFiles(ctx context.Context, addr wire.Address, opts Options) (*FileClient, error) {
	opts.defaults()
	cctx, cancel := context.WithCancel(context.Background())
	c := &FileClient{addr: addr, opts: opts, ctx: cctx, cancel: cancel, done: make(chan struct{}), up: make(chan struct{})}
	cn, err := c.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go c.run(cn)
	return c, nil
}

// Close ends the connection; commands waiting get ErrClosed.
func (c *FileClient) Close() error {
	c.cancel()
	<-c.done
	return nil
}

func (c *FileClient) connect(ctx context.Context) (*fileConn, error) {
	ws, sess, err := dialSession(ctx, &c.opts, c.addr.FilesURL(), c.addr.KeyHash, wire.MaxFrameSize)
	if err != nil {
		return nil, err
	}
	sess.SHA256 = c.opts.SHA256
	return &fileConn{ws: ws, sess: sess, pending: make(map[uint64]chan fileResult), heard: make(chan struct{}, 1)}, nil
}

func (c *FileClient) run(cn *fileConn) {
	defer close(c.done)
	backoff := c.opts.MinBackoff
	for {
		if cn != nil {
			c.mu.Lock()
			c.cn = cn
			close(c.up)
			c.mu.Unlock()
			cn.serve(c.ctx, &c.opts)
			c.mu.Lock()
			c.cn, c.up = nil, make(chan struct{})
			c.mu.Unlock()
			if c.ctx.Err() != nil {
				return
			}
			backoff = c.opts.MinBackoff
		}
		select {
		case <-time.After(backoff/2 + mrand.N(backoff/2+1)):
		case <-c.ctx.Done():
			return
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
		var err error
		if cn, err = c.connect(c.ctx); err != nil {
			cn = nil
		}
	}
}

// conn waits for a connection.
func (c *FileClient) conn(ctx context.Context) (*fileConn, error) {
	for {
		c.mu.Lock()
		cn, up := c.cn, c.up
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// do sends one command and waits for its answer; an ERR answer is
// returned as its wire.ErrCode.
func (c *FileClient) do(ctx context.Context, class wire.ChunkClass, t *wire.FileTransmission, key ed25519.PrivateKey, want wire.FileKind) (wire.FileCommand, error) {
	cn, err := c.conn(ctx)
	if err != nil {
		return wire.FileCommand{}, err
	}
	id, resp, err := cn.send(class, t, key)
	if err != nil {
		return wire.FileCommand{}, err
	}
	select {
	case res := <-resp:
		switch {
		case res.err != nil:
			return res.cmd, res.err
		case res.cmd.Kind == wire.AnsFERR:
			return res.cmd, res.cmd.Code
		case res.cmd.Kind != want:
			return res.cmd, fmt.Errorf("%w: %s, want %s", ErrUnexpected, res.cmd.Kind, want)
		}
		return res.cmd, nil
	case <-ctx.Done():
		cn.forget(id)
		return wire.FileCommand{}, ctx.Err()
	case <-c.ctx.Done():
		return wire.FileCommand{}, ErrClosed
	}
}

// CreateChunk creates a chunk of the class for n recipients (FNEW). It
// generates a fresh sender key and fresh keys for every recipient, pads
// the recipients to a power of two with dummy ones at random positions,
// and returns the sender's record and the n real recipients' records (the
// dummies are dropped). password is the relay's, if it has one.
func (c *FileClient) CreateChunk(ctx context.Context, class wire.ChunkClass, n int, password []byte) (SenderChunk, []RecipientChunk, error) {
	if !class.Valid() || n < 1 || n > wire.MaxChunkRecipients {
		return SenderChunk{}, nil, fmt.Errorf("client: chunk class %s for %d recipients: %w", class, n, wire.CodeCmd)
	}
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SenderChunk{}, nil, fmt.Errorf("client: sender key: %w", err)
	}
	total := PaddedRecipients(n)
	keys := make([]RecipientKeys, total)
	cmd := wire.FileCommand{Kind: wire.CmdFNEW, Class: class, Recipients: make([]wire.ChunkRecipientKey, total), Password: password}
	copy(cmd.AuthKey[:], sk.Public().(ed25519.PublicKey))
	for i := range keys {
		if keys[i], err = NewRecipientKeys(); err != nil {
			return SenderChunk{}, nil, err
		}
		copy(cmd.Recipients[i].Auth[:], keys[i].Auth.Public().(ed25519.PublicKey))
		copy(cmd.Recipients[i].DH[:], keys[i].DH.PublicKey().Bytes())
	}
	ans, err := c.do(ctx, wire.ClassControl, &wire.FileTransmission{Command: cmd}, sk, wire.AnsFIDS)
	if err != nil {
		return SenderChunk{}, nil, err
	}
	if len(ans.RcvIDs) != total {
		return SenderChunk{}, nil, fmt.Errorf("%w: %d recipient IDs for %d keys", ErrUnexpected, len(ans.RcvIDs), total)
	}
	// The real recipients take n positions chosen with crypto/rand: the
	// relay must not be able to tell them from the dummies (math/rand
	// would be predictable from its outputs).
	pos, err := randomPositions(rand.Reader, total, n)
	if err != nil {
		return SenderChunk{}, nil, err
	}
	rcpts := make([]RecipientChunk, 0, n)
	for _, i := range pos {
		rcpts = append(rcpts, recipientChunk(class, ans.RcvIDs[i], keys[i]))
	}
	return SenderChunk{Class: class, SndID: ans.SndID, Key: sk}, rcpts, nil
}

// randomPositions returns n distinct indices of [0, total), total ≤ 256,
// in uniformly random order: the first n steps of a Fisher–Yates shuffle,
// each index drawn from r by rejection sampling (no modulo bias).
func randomPositions(r io.Reader, total, n int) ([]int, error) {
	if total < 1 || total > 256 || n < 0 || n > total {
		return nil, fmt.Errorf("client: %d positions of %d", n, total)
	}
	p := make([]int, total)
	for i := range p {
		p[i] = i
	}
	var b [1]byte
	for i := range n {
		m := total - i       // choose among p[i:]
		limit := 256 - 256%m // bytes below limit map uniformly
		for {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, fmt.Errorf("client: random positions: %w", err)
			}
			if int(b[0]) < limit {
				break
			}
		}
		j := i + int(b[0])%m
		p[i], p[j] = p[j], p[i]
	}
	return p[:n], nil
}

func recipientChunk(class wire.ChunkClass, id wire.ChunkRecipientID, k RecipientKeys) RecipientChunk {
	priv := [32]byte(k.DH.Bytes())
	defer clear(priv[:])
	return RecipientChunk{Class: class, RcvID: id.ID, Key: k.Auth, BoxKey: *wire.BoxKey(&id.RelayDH, &priv)}
}

// Upload uploads the chunk's bytes (FPUT): exactly s.Class.Size() bytes,
// which the caller has already padded and encrypted end to end. nil means
// the relay has them on disk. Uploading the same bytes again is OK.
func (c *FileClient) Upload(ctx context.Context, s SenderChunk, data []byte) error {
	if len(data) != s.Class.Size() {
		return fmt.Errorf("client: %d bytes for a %s chunk: %w", len(data), s.Class, wire.CodeLarge)
	}
	t := &wire.FileTransmission{EntityID: s.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFPUT, Data: data}}
	_, err := c.do(ctx, s.Class, t, s.Key, wire.AnsFOK)
	return err
}

// Download fetches the chunk (FGET) and opens the relay's re-encryption;
// it returns the bytes the sender uploaded. It does not prove they are
// the sender's: the caller checks them with its end-to-end decryption and
// the file digest.
func (c *FileClient) Download(ctx context.Context, r RecipientChunk) ([]byte, error) {
	t := &wire.FileTransmission{EntityID: r.RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFGET}}
	ans, err := c.do(ctx, wire.ClassControl, t, r.Key, wire.AnsCHUNK)
	if err != nil {
		return nil, err
	}
	data, err := wire.OpenChunk(&r.BoxKey, ans.Data)
	if err != nil {
		return nil, err
	}
	if len(data) != r.Class.Size() {
		return nil, fmt.Errorf("%w: %d bytes for a %s chunk", ErrUnexpected, len(data), r.Class)
	}
	return data, nil
}

// Ack tells the relay this recipient has the chunk (FACK); the relay
// forgets the recipient ID and deletes the chunk after its last recipient.
func (c *FileClient) Ack(ctx context.Context, r RecipientChunk) error {
	t := &wire.FileTransmission{EntityID: r.RcvID[:], Command: wire.FileCommand{Kind: wire.CmdFACK}}
	_, err := c.do(ctx, wire.ClassControl, t, r.Key, wire.AnsFOK)
	return err
}

// DeleteChunk deletes the chunk for every recipient (FDEL by the sender).
func (c *FileClient) DeleteChunk(ctx context.Context, s SenderChunk) error {
	t := &wire.FileTransmission{EntityID: s.SndID[:], Command: wire.FileCommand{Kind: wire.CmdFDEL}}
	_, err := c.do(ctx, wire.ClassControl, t, s.Key, wire.AnsFOK)
	return err
}

// Ping checks the connection end to end (PING → PONG).
func (c *FileClient) Ping(ctx context.Context) error {
	_, err := c.do(ctx, wire.ClassControl, &wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil, wire.AnsFPONG)
	return err
}

type fileResult struct {
	cmd wire.FileCommand
	err error
}

// fileConn is one handshaken file session.
type fileConn struct {
	ws   WebSocket
	sess *wire.Session

	writeMu sync.Mutex // the send chain and the socket

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan fileResult
	dead    error
	heard   chan struct{} // a frame arrived
}

// send seals and writes one command; the answer arrives on the channel.
func (cn *fileConn) send(class wire.ChunkClass, t *wire.FileTransmission, key ed25519.PrivateKey) (uint64, chan fileResult, error) {
	resp := make(chan fileResult, 1)
	cn.writeMu.Lock()
	defer cn.writeMu.Unlock()
	cn.mu.Lock()
	if cn.dead != nil {
		err := cn.dead
		cn.mu.Unlock()
		return 0, nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	cn.next++
	id := cn.next
	cn.pending[id] = resp
	cn.mu.Unlock()
	t.CorrID = binary.BigEndian.AppendUint64(nil, id)
	frame, err := cn.sess.SealFrame(class, t, key)
	if err != nil {
		// Nothing was written, so the chains are still in step.
		cn.forget(id)
		return 0, nil, err
	}
	// The write uses no caller context: abandoning a write half-way
	// would break the connection for every other command.
	if err := cn.ws.Write(context.Background(), frame); err != nil {
		cn.fail(fmt.Errorf("client: write: %w", err))
	}
	return id, resp, nil
}

func (cn *fileConn) forget(id uint64) {
	cn.mu.Lock()
	delete(cn.pending, id)
	cn.mu.Unlock()
}

func (cn *fileConn) fail(err error) {
	cn.mu.Lock()
	if cn.dead != nil {
		cn.mu.Unlock()
		return
	}
	cn.dead = err
	pending := cn.pending
	cn.pending = nil
	cn.mu.Unlock()
	for _, ch := range pending {
		ch <- fileResult{err: fmt.Errorf("%w: %w", ErrConnectionLost, err)}
	}
	_ = cn.ws.CloseNow()
}

// serve reads answers until the connection fails or ctx ends. It returns
// only after the goroutines it started (keepalive and its PINGs, the closer)
// are done, so FileClient.Close leaves nothing running.
func (cn *fileConn) serve(ctx context.Context, opts *Options) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { cn.keepalive(ctx, opts, &wg) })
	wg.Go(func() {
		<-ctx.Done()
		cn.fail(ErrClosed)
	})
	for {
		_, b, err := wire.ReadFrame(ctx, cn.ws)
		if errors.Is(err, errText) {
			err = fmt.Errorf("%w: text message", wire.ErrBlock)
		}
		var raw []byte
		if err == nil {
			raw, _, err = cn.sess.OpenFrame(b)
		}
		var t wire.FileTransmission
		if err == nil {
			t, err = wire.ParseFileTransmission(raw)
		}
		if err != nil {
			cn.fail(fmt.Errorf("client: read: %w", err))
			return
		}
		select {
		case cn.heard <- struct{}{}:
		default:
		}
		if len(t.CorrID) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(t.CorrID)
		cn.mu.Lock()
		resp := cn.pending[id]
		delete(cn.pending, id)
		cn.mu.Unlock()
		if resp != nil {
			resp <- fileResult{cmd: t.Command}
		}
	}
}

// keepalive sends PING after PingInterval without a frame and drops the
// connection when nothing arrives within PingTimeout.
// Its PINGs run on wg (serve's, which counts keepalive itself).
func (cn *fileConn) keepalive(ctx context.Context, opts *Options, wg *sync.WaitGroup) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-cn.heard:
			continue
		case <-time.After(opts.PingInterval):
		}
		// The PING may wait behind a chunk being written; the timeout
		// below also covers a write stuck on a dead link, which fail
		// aborts by closing the socket.
		wg.Go(func() {
			_, _, _ = cn.send(wire.ClassControl, &wire.FileTransmission{Command: wire.FileCommand{Kind: wire.CmdFPING}}, nil)
		})
		select {
		case <-ctx.Done():
			return
		case <-cn.heard:
		case <-time.After(opts.PingTimeout):
			cn.fail(errors.New("client: no answer to PING"))
			return
		}
	}
}
