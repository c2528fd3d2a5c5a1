package pgrepl

import (
	"testing"
)

func TestFork(t *testing.T) {
	hist, err := ParseHistory("1\t0/3000060\tno recovery target specified\n\n2\t0/5000000\tbefore 2000-01-01\n")
	if err != nil {
		t.Fatal(err)
	}
	lsn := func(s string) LSN {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	tests := []struct {
		name       string
		tli        uint32
		at         LSN
		primaryTLI uint32
		want       bool
	}{
		{"same timeline", 3, lsn("0/9000000"), 3, false},
		{"behind on an ancestor timeline", 1, lsn("0/3000000"), 3, false},
		{"at the switch point", 2, lsn("0/5000000"), 3, false},
		{"wrote past the switch point", 1, lsn("0/3000100"), 3, true},
		{"promoted on its own", 4, lsn("0/1000000"), 3, true},
		{"ancestor timeline of a later primary", 2, lsn("0/1"), 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := Fork(tc.tli, tc.at, tc.primaryTLI, hist); got != tc.want {
				t.Errorf("Fork = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
	if got, _ := Fork(2, 1, 3, nil); !got {
		t.Error("timeline absent from empty history is not a fork")
	}
	for _, bad := range []string{"", "0", "x/1", "1/zz"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
	if _, err := ParseHistory("1\n"); err == nil {
		t.Error("history line without switch point accepted")
	}
}

func TestEvaluate(t *testing.T) {
	streaming := &Receiver{Status: "streaming", SenderHost: "h", SenderPort: 5432}
	tests := []struct {
		name   string
		s      Standby
		p      *Primary
		checks []string
		resync bool
		bytes  int64
		tls    bool
	}{
		{"healthy", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 90, Receiver: streaming}, &Primary{Timeline: 1, Current: 150}, nil, false, 60, false},
		{"primary unreachable uses receive-replay", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 90, Receiver: streaming}, nil, nil, false, 10, false},
		{"no receiver", Standby{InRecovery: true, Timeline: 1}, nil, []string{"wal_receiver"}, false, 0, false},
		{"wal removed", Standby{InRecovery: true, Timeline: 1, Receive: 5}, &Primary{Timeline: 1, Current: 900, SegmentGone: true, Segment: "000000010000000000000001"}, []string{"wal_receiver"}, true, 900, false},
		{"not a standby", Standby{InRecovery: false, Timeline: 1, Current: 10}, &Primary{Timeline: 1, Current: 10}, []string{"recovery"}, false, 0, false},
		{"fork", Standby{InRecovery: false, Timeline: 2, Current: 10}, &Primary{Timeline: 1, Current: 10}, []string{"timeline"}, false, 0, false},
		{"plain stream, tls not required", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 100, Receiver: streaming}, &Primary{Timeline: 1, Current: 100, Streaming: 1}, nil, false, 0, false},
		{"plain stream, tls required", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 100, Receiver: streaming}, &Primary{Timeline: 1, Current: 100, Streaming: 1}, []string{"tls"}, false, 0, true},
		{"tls stream, tls required", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 100, Receiver: streaming}, &Primary{Timeline: 1, Current: 100, Streaming: 1, SSL: 1}, nil, false, 0, true},
		{"primary unreachable: tls unknown, not failed", Standby{InRecovery: true, Timeline: 1, Receive: 100, Replay: 100, Receiver: streaming}, nil, nil, false, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, b, _ := Evaluate(tc.s, tc.p, true, "resync", tc.tls)
			var checks []string
			resync := false
			for _, x := range f {
				checks = append(checks, x.Check)
				resync = resync || x.NeedsResync
			}
			if len(checks) != len(tc.checks) || (len(checks) > 0 && checks[0] != tc.checks[0]) || resync != tc.resync || b != tc.bytes {
				t.Errorf("checks %v resync %v bytes %d, want %v %v %d", checks, resync, b, tc.checks, tc.resync, tc.bytes)
			}
		})
	}
}
