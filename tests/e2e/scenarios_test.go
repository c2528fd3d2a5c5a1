package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/drwatch/drwatch/tests/e2e/internal/writer"
)

// startWriter writes through the VIP until the test ends.
func startWriter(t *testing.T, name string) *writer.Writer {
	t.Helper()
	w, err := writer.New(writer.Options{
		DSN:   "app:app@tcp(" + vipAddr + ":3306)/app?timeout=1s&readTimeout=2s&writeTimeout=2s",
		Name:  name,
		Pause: 10 * time.Millisecond,
		Log:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// waitSteady waits until site a holds the VIP and the client writes.
func waitSteady(t *testing.T, p *Pair, w *writer.Writer) {
	t.Helper()
	waitFor(t, 2*time.Minute, "site a to hold the VIP", func() (bool, string) {
		got := p.VIPHolders(t)
		return slices.Equal(got, []string{"a"}), fmt.Sprint(got)
	})
	waitFor(t, time.Minute, "the client to write through the VIP", func() (bool, string) {
		st := w.Status()
		return st.Acked >= 50, fmt.Sprintf("%+v", st)
	})
}

// Scenario 1: the active site is powered off; the standby becomes active,
// takes the VIP, and the client reconnects through it.
func TestScenario1ActivePoweredOff(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
		w := startWriter(t, "s1")
		waitSteady(t, p, w)
		ackedBefore := w.Status().Acked
		off := p.PowerOff(t, "a")
		ackedAtOff := w.Status().Acked
		waitFor(t, tm.Limit(), "site b active", func() (bool, string) {
			role, _, err := p.Role(t, "b")
			return role == "active", fmt.Sprintf("role %q, %v", role, err)
		})
		if got := p.VIPHolders(t); !slices.Equal(got, []string{"b"}) {
			t.Errorf("VIP holders %v, want [b]", got)
		}
		waitWritesPast(t, w, ackedAtOff)
		evs, err := p.ReadLog(t, "b")
		if err != nil {
			t.Fatal(err)
		}
		k := readTakeover(evs, "b", off)
		// RPO: every row the client saw acknowledged before the power
		// cut must be on site b, now the primary.
		var present int64
		if err := DB(t, vipAddr).QueryRow("SELECT count(*) FROM app.writes WHERE writer='s1' AND seq <= ?", ackedAtOff).Scan(&present); err != nil {
			t.Fatal(err)
		}
		logFigures(t, "1", tm, "%s, power-off→active %s, client outage %s, rows lost %d of %d acknowledged (%d before the cut began)",
			k.figures(off), since(k.active, off), w.Status().LongestGap.Round(time.Millisecond), ackedAtOff-present, ackedAtOff, ackedBefore)
		mails := p.Mails(t)
		if !slices.ContainsFunc(mails, func(m mailMessage) bool { return mentions(m, "b", "active") }) {
			t.Errorf("no mail says site b became active; mails: %s", subjects(mails))
		}
		if t.Failed() {
			t.Logf("site b's log: %s", Types(evs))
		}
	})
}

// Scenario 2: the link between the sites is cut while every arbiter still
// sees the active site: nothing moves.
func TestScenario2LinkCutArbitersSeeActive(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
		w := startWriter(t, "s2")
		waitSteady(t, p, w)
		cut := time.Now()
		p.Cut(t, "a", PeerAddrs("a")...)
		// Long enough for b to detect the loss, arbitrate, and (wrongly)
		// act, after the arbiters' keepalive bound.
		time.Sleep(tm.Quiet())
		logs := p.Logs(t)
		evs := logs["b"]
		if evs == nil {
			t.Fatal("site b's log unreadable")
		}
		assertNothingMovedSince(t, logs, cut)
		if got := p.VIPHolders(t); !slices.Equal(got, []string{"a"}) {
			t.Errorf("VIP holders %v, want [a]", got)
		}
		k := readTakeover(evs, "b", cut)
		if k.detected.IsZero() {
			t.Errorf("site b never logged the peer unreachable; log: %s", Types(evs))
		}
		// Without a verdict the window proved nothing.
		if Count(evs, "b", "ArbitrationDecided", cut) == 0 {
			t.Errorf("site b never arbitrated within %s of the cut; log: %s", tm.Quiet(), Types(evs))
		}
		st := w.Status()
		if time.Since(st.LastAckAt) > 5*time.Second {
			t.Errorf("the client stopped writing during the cut: %+v", st)
		}
		p.Heal(t, "a")
		logFigures(t, "2", tm, "%s, b's %s within %s of the cut, client outage %s",
			k.figures(cut), verdicts(evs, "b", cut), tm.Quiet(), st.LongestGap.Round(time.Millisecond))
		t.Logf("site b's log: %s", Types(evs))
	})
}
