package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped (with %w) by this package's functions.
var (
	ErrAddress      = errors.New("wire: bad relay address")
	ErrBlockSize    = errors.New("wire: block has the wrong size")
	ErrBlock        = errors.New("wire: malformed block")
	ErrDecrypt      = errors.New("wire: block authentication failed")
	ErrTransmission = errors.New("wire: malformed transmission")
	ErrCommand      = errors.New("wire: unknown or malformed command")
	ErrTooLarge     = errors.New("wire: too large")
	ErrHandshake    = errors.New("wire: malformed handshake")
	ErrIdentity     = errors.New("wire: relay identity does not match the address")
	ErrSignature    = errors.New("wire: bad signature")
	ErrVersion      = errors.New("wire: no common protocol version")
)

// ErrCode is the closed set of error codes a relay answers with in ERR.
// It implements error so that a client can return it directly and callers
// can test errors.Is(err, wire.CodeAuth).
type ErrCode uint8

// The error codes. Their wire form is the upper-case name after "ERR ".
const (
	// CodeAuth: the entity does not exist, the signature is missing or
	// wrong, or the queue is suspended. Same bytes and same work in every case.
	CodeAuth ErrCode = iota + 1
	// CodeQuota: the queue holds the maximum number of messages.
	CodeQuota
	// CodeLarge: the message body is larger than MaxBodySize.
	CodeLarge
	// CodeCmd: unknown command, bad syntax, or a command that needs or
	// forbids an entity ID / signature used the wrong way.
	CodeCmd
	// CodeBlock: a transmission inside the block could not be parsed.
	CodeBlock
	// CodeNoMsg: ACK of a message that is not the one in flight.
	CodeNoMsg
	// CodeProhibited: the command is not allowed in this state (GET on a
	// queue this session is subscribed to, NEW without the relay password).
	CodeProhibited
	// CodeLimit: a rate or count limit was hit (subscriptions, NEW per
	// connection, source address or relay; file limits of SPEC §11.3).
	CodeLimit
	// CodeInternal: the relay failed (e.g. storage error); retry later.
	CodeInternal
	// CodeFull: the relay's storage is full (all queues together); retry
	// later or use another relay.
	CodeFull
	// CodeRoute: a private-routing route is gone (the proxy's session to
	// the destination ended, or the destination has no forward key for
	// it): ask for a new one with PRXY.
	CodeRoute
	// CodeProxy: the proxy could not reach the destination relay (connect,
	// handshake or identity failed, or the connection broke).
	CodeProxy
)

var codeNames = [...]string{"", "AUTH", "QUOTA", "LARGE", "CMD", "BLOCK", "NO_MSG", "PROHIBITED", "LIMIT", "INTERNAL", "FULL", "ROUTE", "PROXY"}

// AllCodes lists every error code, in numeric order.
func AllCodes() []ErrCode {
	return []ErrCode{CodeAuth, CodeQuota, CodeLarge, CodeCmd, CodeBlock, CodeNoMsg, CodeProhibited, CodeLimit, CodeInternal, CodeFull, CodeRoute, CodeProxy}
}

// String returns the wire name of the code.
func (c ErrCode) String() string {
	if c == 0 || int(c) >= len(codeNames) {
		return fmt.Sprintf("ErrCode(%d)", uint8(c))
	}
	return codeNames[c]
}

// Error implements error.
func (c ErrCode) Error() string { return "relay error " + c.String() }

func parseCode(s string) (ErrCode, bool) {
	for i := 1; i < len(codeNames); i++ {
		if codeNames[i] == s {
			return ErrCode(i), true
		}
	}
	return 0, false
}
