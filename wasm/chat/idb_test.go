//go:build js && wasm

package chat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wisp-chat/wisp/crypto/vault"
	"github.com/wisp-chat/wisp/wasm/store"
)

// TestProfilesOnIndexedDB creates, locks, unlocks and deletes profiles on
// the browser's real IndexedDB, with the default Argon2id cost.
func TestProfilesOnIndexedDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fsys, err := store.OpenIndexedDB(ctx, fmt.Sprintf("wisp-chat-test-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(fsys, Config{Origin: "http://127.0.0.1:8080", Argon2: vault.DefaultParams()})
	start := time.Now()
	id, err := m.CreateProfile(ctx, NewProfile{DisplayName: "Ada", Passphrase: "a long enough passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("profile created (Argon2id 64 MiB, t=3) in %v", time.Since(start))
	if _, err := m.Unlock(ctx, id, "not the passphrase", nil); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	start = time.Now()
	p, err := m.Unlock(ctx, id, "a long enough passphrase", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unlocked in %v", time.Since(start))
	if p.Info().DisplayName != "Ada" {
		t.Errorf("name %q", p.Info().DisplayName)
	}
	if _, err := p.CreateInvitation(ctx, false); !errors.Is(err, ErrNoRelay) {
		t.Errorf("invitation without relays: %v", err)
	}
	list, err := m.Profiles()
	if err != nil || len(list) != 1 || !list[0].Unlocked || list[0].Name != "Ada" {
		t.Errorf("profiles: %+v %v", list, err)
	}
	if err := m.DeleteProfile(id); err != nil {
		t.Fatal(err)
	}
	if list, _ := m.Profiles(); len(list) != 0 {
		t.Errorf("profile survived deletion: %+v", list)
	}
}
