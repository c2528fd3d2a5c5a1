package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

// storeSuite is the one test suite both Store implementations pass.
func storeSuite(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	t.Run("absent key", func(t *testing.T) {
		s := newStore(t)
		e, rev, err := s.Get(ctx, "a/Kind/nope")
		if err != nil || e != nil || rev != 0 {
			t.Fatalf("Get = %v, %d, %v; want nil, 0, nil", e, rev, err)
		}
	})
	t.Run("create, read, update by revision", func(t *testing.T) {
		s := newStore(t)
		key := "a/ReplicationBroken/mysql cross db-b:3306 io_thread"
		want := Entry{Key: key, State: Sending, Cause: "e1", ClaimedAt: t0}
		rev, err := s.Put(ctx, key, want, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, grev, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if grev != rev {
			t.Errorf("revision = %d, want %d", grev, rev)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("entry (-want +got):\n%s", diff)
		}
		want.State = Sent
		rev2, err := s.Put(ctx, key, want, rev)
		if err != nil {
			t.Fatal(err)
		}
		if rev2 <= rev {
			t.Errorf("revision did not grow: %d after %d", rev2, rev)
		}
	})
	t.Run("stale revision conflicts", func(t *testing.T) {
		s := newStore(t)
		rev, err := s.Put(ctx, "k", Entry{Key: "k", State: Sending}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "k", Entry{Key: "k"}, 0); !errors.Is(err, ErrConflict) {
			t.Errorf("second create: err = %v, want ErrConflict", err)
		}
		if _, err := s.Put(ctx, "k", Entry{Key: "k", State: Sent}, rev); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "k", Entry{Key: "k", State: Cleared}, rev); !errors.Is(err, ErrConflict) {
			t.Errorf("update at an old revision: err = %v, want ErrConflict", err)
		}
	})
	t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
		s := newStore(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			cause := events.ID(fmt.Sprintf("e%d", i))
			wg.Go(func() {
				e, rev, err := s.Get(ctx, "race")
				if err != nil {
					t.Error(err)
					return
				}
				if d := Decide(e, Alert{Key: "race", Cause: cause}, t0, Policy{Interval: time.Hour, ClaimTTL: time.Minute}); d.Action != Send {
					return
				}
				if _, err := s.Put(ctx, "race", Entry{Key: "race", State: Sending, Cause: cause, ClaimedAt: t0}, rev); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Errorf("%d claims won, want 1", n)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	storeSuite(t, func(*testing.T) Store { return NewMemory() })
}

func TestKVStore(t *testing.T) {
	site := bustest.RunJetStream(t)
	b := site.Bus(t, "notifier", "")
	n := 0
	storeSuite(t, func(t *testing.T) Store {
		n++
		s, err := NewKV(context.Background(), b.JetStream(), "test_"+string(rune('a'+n)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// BenchmarkDedupe measures the suppress path a flood takes: read the
// entry, decide. Report: events/s.
func BenchmarkDedupe(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, s Store) {
		t0 := time.Now()
		p := Policy{Interval: time.Hour, ClaimTTL: 10 * time.Minute}
		if _, err := s.Put(ctx, "a/ArbiterQuorumLow/", Entry{Key: "a/ArbiterQuorumLow/", State: Sent, Cause: "e0", SentAt: t0, Until: t0.Add(time.Hour)}, 0); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			e, _, err := s.Get(ctx, "a/ArbiterQuorumLow/")
			if err != nil {
				b.Fatal(err)
			}
			if d := Decide(e, Alert{Key: "a/ArbiterQuorumLow/", Cause: "e1"}, t0, p); d.Action != Suppress {
				b.Fatalf("action %v", d.Action)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemory()) })
	b.Run("kv", func(b *testing.B) {
		site := bustest.RunJetStream(b)
		bb := site.Bus(b, "notifier", "")
		s, err := NewKV(ctx, bb.JetStream(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})
}
