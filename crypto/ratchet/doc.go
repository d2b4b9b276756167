// Package ratchet is Wisp's end-to-end layer: an X3DH-style agreement without
// identity keys, then Signal's double ratchet with header encryption, with an
// optional (on by default) ML-KEM-768 hybrid step, behind a two-call sealed
// envelope API.
//
// Connecting (the transport of the values below is the agent's business):
//
//	// inviter
//	sec, inv, err := ratchet.NewInvitation(rand.Reader, true)   // true: offer ML-KEM (the default policy)
//	link, err := inv.MarshalBinary()                             // 66 bytes, in the invitation
//	// joiner
//	inv, err := ratchet.ParseInvitation(link)
//	js, conf, err := ratchet.Join(rand.Reader, inv, true)
//	env, err := js.Seal(rand.Reader, replyQueueAndProfile)       // goes with conf in the confirmation
//	// inviter, on the confirmation
//	is, err := sec.Accept(conf)
//	msg, err := is.Open(env)
//
// Then, on both sides:
//
//	env, err := st.Seal(rand.Reader, plaintext) // len(env) == EnvelopeSize, plaintext <= MaxPlaintext
//	pt, err := st.Open(env)                     // on error the state is unchanged
//	code := st.SecurityCode().Digits()          // same on both sides; users compare it
//	saved, err := st.MarshalBinary()            // persist after every Seal/Open
//
// Wisp offers and accepts the ML-KEM-768 hybrid by default: pass true to
// NewInvitation and Join unless the user has turned it off. It is used when
// both sides support it, and cannot then be stripped (the flags are in the
// associated data).
//
// A State is not safe for concurrent use. Open and Seal either succeed or
// leave the state exactly as it was: persist the state after each
// successful call; after a failure there is nothing to roll back. A message
// key is deleted after first use: a replayed envelope fails with
// ErrDuplicate. The InvitationSecret is for one joiner: delete it once
// Accept has succeeded.
//
// See crypto/SPEC.md for every byte.
package ratchet
