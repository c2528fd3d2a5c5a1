// Package pgrepl checks and drives PostgreSQL streaming replication: pure
// evaluation of a standby's reading (WAL receiver, lag, timeline fork,
// removed WAL) and the statements that repair, promote and fence.
package pgrepl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// LSN is a WAL location.
type LSN uint64

// ParseLSN reads "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("lsn %q is not X/Y", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("lsn %q is not hexadecimal X/Y", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// HistoryEntry is one line of a timeline history file: timeline TLI ended
// at Switch, where its child began.
type HistoryEntry struct {
	TLI    uint32
	Switch LSN
}

// ParseHistory reads a timeline history file ("1\t0/3000060\tno recovery target specified").
func ParseHistory(s string) ([]HistoryEntry, error) {
	var out []HistoryEntry
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("history line %q has no switch point", line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("history line %q: timeline: %w", line, err)
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("history line %q: %w", line, err)
		}
		out = append(out, HistoryEntry{uint32(tli), lsn})
	}
	return out, nil
}

// Fork says whether a server on timeline tli at lsn can no longer follow a
// primary on primaryTLI with history: it is on a timeline the primary never
// had, or it wrote past the point where the primary's history left its
// timeline. The reason names both.
func Fork(tli uint32, lsn LSN, primaryTLI uint32, history []HistoryEntry) (bool, string) {
	switch {
	case tli == primaryTLI:
		return false, ""
	case tli > primaryTLI:
		return true, fmt.Sprintf("server is on timeline %d, the primary on %d: it was promoted on its own and wrote on a timeline the primary does not have", tli, primaryTLI)
	}
	for _, h := range history {
		if h.TLI == tli {
			if lsn > h.Switch {
				return true, fmt.Sprintf("server is at %s on timeline %d, past %s where the primary's history left timeline %d for its own", lsn, tli, h.Switch, tli)
			}
			return false, ""
		}
	}
	return true, fmt.Sprintf("timeline %d of the server is not in the primary's history (timeline %d)", tli, primaryTLI)
}

// Standby is one reading of the local server.
type Standby struct {
	InRecovery bool
	Timeline   uint32
	// Current is pg_current_wal_lsn on a primary, the receive (or replay)
	// LSN on a standby.
	Current  LSN
	Receive  LSN
	Replay   LSN
	LagSec   float64
	Receiver *Receiver
}

// Receiver is the row of pg_stat_wal_receiver.
type Receiver struct {
	PID        int
	Status     string
	SenderHost string
	SenderPort int
}

// Primary is one reading of the primary a standby follows.
type Primary struct {
	Current  LSN
	Timeline uint32
	History  []HistoryEntry
	// SegmentGone is true when the WAL segment the standby needs next is no
	// longer in the primary's pg_wal.
	SegmentGone bool
	Segment     string
	// Streaming counts the primary's streaming WAL senders, SSL how many of
	// them run over TLS (pg_stat_ssl).
	Streaming, SSL int
	Err            string
}

// Encrypted says whether the standby's stream runs over TLS, as the
// primary's pg_stat_ssl shows its WAL senders (a standby cannot see it of
// its own receiver): "yes", "no", or "" when unknown. With one standby per
// primary, as drwatch pairs have, every sender must use SSL.
func Encrypted(s Standby, p *Primary) string {
	if s.Receiver == nil || s.Receiver.Status != "streaming" || p == nil || p.Err != "" || p.Streaming == 0 {
		return ""
	}
	if p.SSL < p.Streaming {
		return "no"
	}
	return "yes"
}

// Evaluate turns a reading into failing checks and lag. p is nil when the
// primary was not reachable.
func Evaluate(s Standby, p *Primary, expectStandby bool, resyncCommand string, requireTLS bool) (findings []watch.Finding, lagSec float64, lagBytes int64, lagKnown bool) {
	if !expectStandby {
		return nil, 0, 0, false
	}
	if p != nil && p.Err == "" {
		at := s.Receive
		if !s.InRecovery {
			at = s.Current
		}
		if at < s.Replay {
			at = s.Replay
		}
		if fork, why := Fork(s.Timeline, at, p.Timeline, p.History); fork {
			return []watch.Finding{{Check: "timeline", Error: "timeline fork", ResyncCommand: resyncCommand,
				Diverged: []string{why, fmt.Sprintf("primary at %s on timeline %d", p.Current, p.Timeline)}}}, 0, 0, false
		}
	}
	if !s.InRecovery {
		return []watch.Finding{{Check: "recovery", Error: "server is not a standby: pg_is_in_recovery() is false"}}, 0, 0, false
	}
	if s.Receiver == nil || s.Receiver.Status != "streaming" {
		st := "no WAL receiver running"
		if s.Receiver != nil {
			st = "WAL receiver status " + s.Receiver.Status
		}
		f := watch.Finding{Check: "wal_receiver", Error: st, Repairable: true}
		if p != nil && p.SegmentGone {
			f.Error = fmt.Sprintf("%s; requested WAL segment %s has already been removed on the primary", st, p.Segment)
			f.NeedsResync, f.ResyncCommand = true, resyncCommand
		}
		findings = append(findings, f)
	} else if requireTLS && Encrypted(s, p) == "no" {
		findings = append(findings, watch.Finding{Check: "tls", Repairable: true,
			Error: fmt.Sprintf("WAL streams from %s:%d unencrypted: %d of the primary's %d streaming WAL senders use SSL while pgsql.tls requires TLS",
				s.Receiver.SenderHost, s.Receiver.SenderPort, p.SSL, p.Streaming)})
	}
	lagSec = s.LagSec
	if s.Receive >= s.Replay {
		lagBytes = int64(s.Receive - s.Replay)
	}
	if p != nil && p.Err == "" && p.Current >= s.Replay {
		lagBytes = int64(p.Current - s.Replay)
	}
	return findings, lagSec, lagBytes, true
}
