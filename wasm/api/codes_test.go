package api

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wisp-chat/wisp/server/wire"
	"github.com/wisp-chat/wisp/wasm/chat"
	"github.com/wisp-chat/wisp/wasm/rpc"
)

// TestRelayRefusalCodes: what a relay refuses for a while reaches the
// page as a code it has a sentence for, never as a Go error string.
func TestRelayRefusalCodes(t *testing.T) {
	for in, want := range map[error]rpc.Code{
		wire.CodeLimit: CodeRelayBusy,
		wire.CodeFull:  CodeRelayFull,
		wire.CodeQuota: CodeRelayFull,
	} {
		var re *rpc.Error
		if err := coded(fmt.Errorf("creating the queue: %w", in)); !errors.As(err, &re) || re.Code != want {
			t.Errorf("%v: coded as %v, want %s", in, err, want)
		}
	}
}

// TestGroupErrorCodes: the group errors of package chat reach the page as
// codes, also when a refused change wraps ErrInvalid beside them.
func TestGroupErrorCodes(t *testing.T) {
	for in, want := range map[error]rpc.Code{
		chat.ErrGroupFull:   CodeGroupFull,
		chat.ErrNotAllowed:  CodeNotAllowed,
		chat.ErrNoGroup:     CodeNoGroup,
		chat.ErrNoMember:    CodeNoMember,
		chat.ErrGroupClosed: CodeGroupClosed,
		fmt.Errorf("%w: %w", chat.ErrNotAllowed, chat.ErrInvalid): CodeNotAllowed,
		fmt.Errorf("%w: %w", chat.ErrNoMember, chat.ErrInvalid):   CodeNoMember,
	} {
		var re *rpc.Error
		if err := coded(fmt.Errorf("changing the group: %w", in)); !errors.As(err, &re) || re.Code != want {
			t.Errorf("%v: coded as %v, want %s", in, err, want)
		}
	}
}
