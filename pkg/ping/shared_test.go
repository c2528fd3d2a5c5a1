package ping

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestPingersKeepTheirReplies: two raw-socket pingers of one process (the
// drwatch binary runs heartbeat and arbiter together) both see every echo
// reply. Even with the same identifier drawn, one's reply must never end
// the other's ping with the same sequence number: the payload token tells
// them apart.
func TestPingersKeepTheirReplies(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("prerequisite missing in CI: root is needed for a raw ICMP socket")
		}
		t.Skip("skipped: root is needed for a raw ICMP socket")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Listen(ctx, Privileged)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := listen(networkRaw)
	if err != nil {
		t.Fatal(err)
	}
	b := start(ctx, conn, true, a.id)
	// b waits for sequence 1 from 127.0.0.1 without sending; a sends it.
	other := pending{addr: netip.MustParseAddr("127.0.0.1"), done: make(chan struct{})}
	seq, err := b.register(other)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if err := a.Ping(pctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	aseq := a.seq
	a.mu.Unlock()
	if aseq != seq {
		t.Fatalf("test setup: a used sequence %d, b waits on %d", aseq, seq)
	}
	select {
	case <-other.done:
		t.Fatal("b took a's echo reply for its own")
	case <-time.After(100 * time.Millisecond):
	}
}
