package sessions

import (
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	var set Set[int]
	for i := range 3 {
		if !set.Add(i) {
			t.Fatalf("Add(%d) refused before Close", i)
		}
	}
	set.Remove(1)
	if n := set.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
	open, first := set.Close()
	slices.Sort(open)
	if !first || !slices.Equal(open, []int{0, 2}) {
		t.Errorf("Close = %v, %v", open, first)
	}
	if set.Add(7) {
		t.Error("Add accepted after Close")
	}
	if open, first := set.Close(); first || open != nil {
		t.Errorf("second Close = %v, %v", open, first)
	}
}

// TestWait: Wait returns once every session added is removed, not before.
func TestWait(t *testing.T) {
	var set Set[int]
	set.Add(1)
	set.Add(2)
	set.Add(2) // counted once
	done := make(chan struct{})
	go func() { set.Wait(); close(done) }()
	set.Remove(1)
	set.Remove(1) // removed twice: counted once
	select {
	case <-done:
		t.Fatal("Wait returned with a session open")
	default:
	}
	set.Close()
	set.Remove(2)
	<-done
}
