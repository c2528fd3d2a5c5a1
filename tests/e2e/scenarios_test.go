package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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


// waitActive waits until site a holds the VIP and the client writes.
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
	for _, tc := range []struct {
		name   string
		timers Timers
		limit  time.Duration
	}{
		{"aggressive", AggressiveTimers, 2 * time.Minute},
		{"default", DefaultTimers, 8 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.timers == DefaultTimers && os.Getenv("DRWATCH_E2E_DEFAULT_TIMERS") != "1" {
				t.Skip("seed-default timers take minutes per failover; DRWATCH_E2E_DEFAULT_TIMERS=1 measures them")
			}
			p := StartPair(t, PairOptions{Drwatch: true, Timers: tc.timers})
			w := startWriter(t, "s1")
			waitSteady(t, p, w)
			ackedBefore := w.Status().Acked
			off := p.PowerOff(t, "a")
			ackedAtOff := w.Status().Acked
			waitFor(t, tc.limit, "site b active", func() (bool, string) {
				role, _, err := p.Role(t, "b")
				return role == "active", fmt.Sprintf("role %q, %v", role, err)
			})
			if got := p.VIPHolders(t); !slices.Equal(got, []string{"b"}) {
				t.Errorf("VIP holders %v, want [b]", got)
			}
			waitFor(t, time.Minute, "the client to write again through the VIP", func() (bool, string) {
				st := w.Status()
				return st.Acked > ackedAtOff+20, fmt.Sprintf("%+v", st)
			})
			evs, err := p.ReadLog(t, "b")
			if err != nil {
				t.Fatal(err)
			}
			detected := FirstEvent(evs, "b", "RemoteUnreachable", off)
			decided := FirstEvent(evs, "b", "FailoverStarted", off)
			if decided.IsZero() {
				decided = FirstEvent(evs, "b", "ArbitrationDecided", off)
			}
			active := FirstEvent(evs, "b", "RoleChanged", off)
			// RPO: every row the client saw acknowledged before the power
			// cut must be on site b, now the primary.
			var present int64
			if err := DB(t, vipAddr).QueryRow("SELECT count(*) FROM app.writes WHERE writer='s1' AND seq <= ?", ackedAtOff).Scan(&present); err != nil {
				t.Fatal(err)
			}
			t.Logf("FIGURES scenario 1 (%s timers): detection %s, decision→active %s, power-off→active %s, client outage %s, rows lost %d of %d acknowledged (%d before the cut began)",
				tc.name, since(detected, off), since(active, decided), since(active, off), w.Status().LongestGap.Round(time.Millisecond), ackedAtOff-present, ackedAtOff, ackedBefore)
			mails := p.Mails(t)
			if !slices.ContainsFunc(mails, func(m mailMessage) bool { return mentions(m, "b", "active") }) {
				t.Errorf("no mail says site b became active; mails: %s", subjects(mails))
			}
			if t.Failed() {
				t.Logf("site b's log: %s", Types(evs))
			}
		})
	}
}

// Scenario 2: the link between the sites is cut while every arbiter still
// sees the active site: nothing moves.
func TestScenario2LinkCutArbitersSeeActive(t *testing.T) {
	timers := AggressiveTimers
	p := StartPair(t, PairOptions{Drwatch: true, Timers: timers})
	w := startWriter(t, "s2")
	waitSteady(t, p, w)
	cut := time.Now()
	p.Cut(t, "a", PeerAddrs("a")...)
	// Long enough for b to detect the loss, arbitrate, and (wrongly) act,
	// plus the arbiters' keepalive bound.
	wait := 3*(timers.Interval+time.Duration(timers.Retries)*timers.Timeout) + 20*time.Second
	time.Sleep(wait)
	evs, err := p.ReadLog(t, "b")
	if err != nil {
		t.Fatal(err)
	}
	if rc := RoleChanges("b", evs); slices.ContainsFunc(rc, func(r roleChange) bool { return r.To == "active" }) {
		t.Errorf("site b became active during a cut while the arbiters saw site a: %+v", rc)
	}
	if got := p.VIPHolders(t); !slices.Equal(got, []string{"a"}) {
		t.Errorf("VIP holders %v, want [a]", got)
	}
	if FirstEvent(evs, "b", "RemoteUnreachable", cut).IsZero() {
		t.Errorf("site b never logged the peer unreachable; log: %s", Types(evs))
	}
	st := w.Status()
	if time.Since(st.LastAckAt) > 5*time.Second {
		t.Errorf("the client stopped writing during the cut: %+v", st)
	}
	p.Heal(t, "a")
	t.Logf("site b's log: %s", Types(evs))
}

func since(t, from time.Time) string {
	if t.IsZero() || from.IsZero() {
		return "n/a"
	}
	return t.Sub(from).Round(10 * time.Millisecond).String()
}
