package store

import (
	"context"
	"time"

	"github.com/wisp-chat/wisp/server/wire"
)

// Backend is what the relay needs from durable storage. *Store (bbolt,
// one process) and *pgstore.Store (PostgreSQL, any number of processes)
// implement it, and the conformance suite in package storetest runs
// against both.
//
// Every method is safe for concurrent use. Create, Secure, Suspend,
// Delete, PutQueued and Ack are durable when they return nil. PutQueued
// calls queued once the message has its place in the queue's order (a
// later PutQueued to the same queue stores after it), which may be
// before it is durable. Create and PutQueued return ErrFull when the
// store holds Options.MaxBytes. After Close every method returns
// ErrClosed.
type Backend interface {
	Create(k QueueKey, snd SenderKey, q Queue) error
	Get(k QueueKey) (Queue, error)
	BySender(snd SenderKey) (QueueKey, Queue, error)
	Secure(k QueueKey, sndAuth [wire.KeySize]byte) error
	Suspend(k QueueKey) error
	Delete(k QueueKey) error
	Put(k QueueKey, m Message, quota uint32) error
	PutQueued(k QueueKey, m Message, quota uint32, queued func()) error
	Peek(k QueueKey) (Message, bool, error)
	Ack(k QueueKey, id wire.MsgID) (Message, bool, error)
	Expire(cutoff time.Time, limit int) (int, error)
	Counts() (queues, messages int64, err error)
	Bytes() (int64, error)
	Close() error
}

// Shared is implemented by a Backend that several relay processes use
// at once (one relay address behind a load balancer). Each process
// learns from Events what the others changed, so that a message stored
// through one process reaches a recipient subscribed on another, and a
// queue is delivered by one subscription at a time across all of them.
type Shared interface {
	// Subscribe records that this process now delivers queue k, tells
	// the other processes (an EventSubscribed) and returns the
	// subscription's epoch: larger than every earlier one of k, in
	// whichever process it was taken.
	Subscribe(k QueueKey) (epoch uint64, err error)
	// Epoch returns the latest subscription epoch of k (0: never).
	Epoch(k QueueKey) (uint64, error)
	// Events calls fn, one call at a time, for every change committed by
	// other processes, in commit order, until ctx ends; it returns
	// ctx's error. Each time it starts listening (at first, and when
	// the database connection was lost and is back) it calls fn with
	// EventResync: events before that are lost, and the caller rechecks
	// what it holds.
	Events(ctx context.Context, fn func(Event)) error
}

// EventKind says what another process changed.
type EventKind uint8

// Event kinds.
const (
	// EventStored: a message was stored in Queue.
	EventStored EventKind = iota + 1
	// EventAcked: message Msg of Queue was acknowledged and deleted.
	EventAcked
	// EventSubscribed: Queue was subscribed with Epoch.
	EventSubscribed
	// EventDeleted: Queue was deleted.
	EventDeleted
	// EventResync: events may have been lost; recheck every queue.
	EventResync
)

// Event is a change another relay process committed.
type Event struct {
	Kind  EventKind
	Queue QueueKey
	Msg   wire.MsgID // EventAcked
	Epoch uint64     // EventSubscribed
}

var _ Backend = (*Store)(nil)
