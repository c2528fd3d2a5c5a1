package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/checker"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/tests/e2e/internal/writer"
)

// mailsSince are the mails received at or after since whose subject
// contains every word.
func mailsSince(ms []mailMessage, since time.Time, words ...string) []mailMessage {
	var out []mailMessage
	for _, m := range ms {
		if m.At.Before(since) {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(strings.ToLower(m.Subject), strings.ToLower(w))
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// waitRole waits until site's own log (or, when it is down, the peer's
// copy) says it is role, and returns when that RoleChanged was logged.
func waitRole(t *testing.T, p *Pair, site, role string, limit time.Duration) time.Time {
	t.Helper()
	var at time.Time
	defer func() {
		if t.Failed() {
			logDecisions(t, p, site)
		}
	}()
	waitFor(t, limit, "site "+site+" "+role, func() (bool, string) {
		evs, err := p.ReadLog(t, site)
		rc := RoleChanges(site, evs)
		if len(rc) == 0 {
			return false, fmt.Sprintf("no role change, %v", err)
		}
		last := rc[len(rc)-1]
		at = last.At
		return last.To == role, fmt.Sprintf("%s at epoch %d", last.To, last.Epoch)
	})
	return at
}

// logDecisions prints what site's orchestrator decided and ran, payloads
// included, so a role that never came says why.
func logDecisions(t *testing.T, p *Pair, site string) {
	evs, err := p.ReadLog(t, site)
	if err != nil {
		t.Logf("site %s's log: %v", site, err)
		return
	}
	for _, ev := range evs {
		switch ev.Type {
		case "FailoverDecided", "FailoverStarted", "FailoverStepDone", "FailoverAborted", "RoleChanged", "ArbitersClaimed", "RemoteUnreachable", "RemoteReachable":
			t.Logf("%s %s.%s %s", ev.Time.Format("15:04:05.000"), ev.Site, ev.Type, ev.Payload)
		}
	}
}

// assertNothingMovedSince fails when either site logged a role change, or
// started a failover, after since. A started failover counts on its own:
// a wrong takeover shows at its decision, before its saga's steps (the
// arbiter claim, the database checks) reach a role change.
func assertNothingMovedSince(t *testing.T, logs map[string][]logEvent, since time.Time) {
	t.Helper()
	for _, rc := range AllRoleChanges(logs) {
		if rc.At.After(since) {
			t.Errorf("site %s changed role %s → %s (epoch %d) at %s; nothing should move", rc.Site, rc.From, rc.To, rc.Epoch, rc.At.Format("15:04:05.000"))
		}
	}
	seen := map[string]bool{}
	for _, from := range []string{"a", "b"} {
		for _, ev := range logs[from] {
			if ev.Type == "FailoverStarted" && ev.Time.After(since) && !seen[ev.ID] {
				seen[ev.ID] = true
				t.Errorf("site %s started a failover at %s; nothing should move: %s", ev.Site, ev.Time.Format("15:04:05.000"), ev.Payload)
			}
		}
	}
}

func wantVIP(t *testing.T, p *Pair, want ...string) {
	t.Helper()
	if got := p.VIPHolders(t); !slices.Equal(got, want) {
		t.Errorf("VIP holders %v, want %v", got, want)
	}
}

// waitVIPOn waits up to 10 s until site alone holds the VIP.
func waitVIPOn(t *testing.T, p *Pair, site string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the VIP on "+site+" only", func() (bool, string) {
		got := p.VIPHolders(t)
		return slices.Equal(got, []string{site}), fmt.Sprint(got)
	})
}

// waitWritesPast waits up to a minute until the client has had 20 more
// writes acknowledged through the VIP than acked.
func waitWritesPast(t *testing.T, w *writer.Writer, acked int64) {
	t.Helper()
	waitFor(t, time.Minute, "the client to write again through the VIP", func() (bool, string) {
		st := w.Status()
		return st.Acked > acked+20, fmt.Sprintf("%+v", st)
	})
}

// Scenario 3: the link between the sites is cut and the active site also
// loses its arbiters: it demotes itself (its database fenced, the VIP
// gone from its namespace) and the standby takes over.
func TestScenario3ActiveIsolated(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
		w := startWriter(t, "s3")
		waitSteady(t, p, w)
		cut := time.Now()
		p.Cut(t, "a", append(PeerAddrs("a"), arbiterAddrs...)...)
		aStandby := waitRole(t, p, "a", "standby", tm.Limit())
		bActive := waitRole(t, p, "b", "active", tm.Limit())
		// a's namespace no longer holds the address; b's does.
		waitVIPOn(t, p, "b")
		if ro := p.MariaDB(t, "a", "SELECT @@global.read_only"); ro != "1" {
			t.Errorf("site a's MariaDB read_only = %s after it demoted itself, want 1", ro)
		}
		ackedAtActive := w.Status().Acked
		waitWritesPast(t, w, ackedAtActive)
		logs := p.Logs(t)
		assertNeverTwoActive(t, logs, nil, nil)
		if !aStandby.Before(bActive) {
			t.Errorf("site b active at %s before site a stood down at %s", bActive.Format("15:04:05.000"), aStandby.Format("15:04:05.000"))
		}
		a, b := logs["a"], logs["b"]
		logFigures(t, "3", tm, "a detection %s, a stood down %s after the cut; b %s, cut→b active %s; client outage %s",
			since(readTakeover(a, "a", cut).detected, cut), since(aStandby, cut), readTakeover(b, "b", cut).figures(cut),
			since(bActive, cut), w.Status().LongestGap.Round(time.Millisecond))
		mails := p.Mails(t)
		if len(mailsSince(mails, cut, "site b is now active")) == 0 {
			t.Errorf("no mail says site b became active; mails: %s", subjects(mails))
		}
		p.Heal(t, "a")
		if t.Failed() {
			t.Logf("site a's log: %s", Types(a))
			t.Logf("site b's log: %s", Types(b))
		}
	})
}

// Scenarios 3b and 4 move nothing, so they share one pair: first the
// arbiters fall below the warning share with the link fine, then the
// standby site goes down. Each watches for tm.Quiet() from its fault.
func TestScenarios3bAnd4NothingMoves(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
		w := startWriter(t, "s34")
		waitSteady(t, p, w)

		t.Run("3b arbiters below the warning share", func(t *testing.T) {
			cut := time.Now()
			// Site a keeps one arbiter of three: 33% < warning 70%.
			p.Cut(t, "a", arbiterAddrs[:2]...)
			var first time.Time
			waitFor(t, tm.Limit(), "the arbiter warning mail", func() (bool, string) {
				ms := mailsSince(p.Mails(t), cut, "[drwatch a]", "arbiters reachable")
				if len(ms) > 0 {
					first = ms[0].At
				}
				return len(ms) > 0, subjects(p.Mails(t))
			})
			// Several more arbiter rounds: the notifier must not mail
			// again within its interval (3600 s); and nothing may move.
			time.Sleep(time.Until(cut.Add(tm.Quiet())))
			mails := p.Mails(t)
			if got := mailsSince(mails, cut, "arbiters reachable"); len(got) != 1 {
				t.Errorf("%d arbiter warning mails, want exactly one: %s", len(got), subjects(got))
			}
			logs := p.Logs(t)
			assertNothingMovedSince(t, logs, cut)
			wantVIP(t, p, "a")
			if n := Count(logs["a"], "a", "ArbiterQuorumLow", cut); n == 0 {
				t.Errorf("site a logged no ArbiterQuorumLow; log: %s", Types(logs["a"]))
			}
			if st := w.Status(); time.Since(st.LastAckAt) > 5*time.Second {
				t.Errorf("the client stopped writing: %+v", st)
			}
			logFigures(t, "3b", tm, "detection %s (the link is up), arbiters cut → warning mail %s, nothing moved in %s; mails: %s",
				since(readTakeover(logs["b"], "b", cut).detected, cut), since(first, cut), tm.Quiet(), subjects(mailsSince(mails, cut)))
			p.Heal(t, "a")
		})

		t.Run("4 standby site down", func(t *testing.T) {
			off := p.PowerOff(t, "b")
			var detected time.Time
			waitFor(t, tm.Limit(), "site a to detect the standby's loss", func() (bool, string) {
				evs, _ := p.ReadLog(t, "a")
				detected = FirstEvent(evs, "a", "RemoteUnreachable", off)
				return !detected.IsZero(), Types(evs)
			})
			// Long enough for a's arbitration rounds and any (wrong) move.
			time.Sleep(time.Until(off.Add(tm.Quiet())))
			logs := p.Logs(t)
			assertNothingMovedSince(t, logs, off)
			if rc := RoleChanges("a", logs["a"]); len(rc) == 0 || rc[len(rc)-1].To != "active" {
				t.Errorf("site a's roles %+v, want it still active", rc)
			}
			// Without a verdict the window proved nothing.
			if Count(logs["a"], "a", "ArbitrationDecided", off) == 0 {
				t.Errorf("site a never arbitrated within %s of the power off; log: %s", tm.Quiet(), Types(logs["a"]))
			}
			wantVIP(t, p, "a")
			if st := w.Status(); time.Since(st.LastAckAt) > 5*time.Second {
				t.Errorf("the client stopped writing: %+v", st)
			}
			mails := p.Mails(t)
			if got := mailsSince(mails, off, "[drwatch a]", "unreachable"); len(got) != 1 {
				t.Errorf("%d mails say site b is unreachable, want exactly one; all since the power off: %s", len(got), subjects(mailsSince(mails, off)))
			}
			logFigures(t, "4", tm, "%s (a stays active), a's %s within %s of the power off; mails: %s",
				readTakeover(logs["a"], "a", off).figures(off), verdicts(logs["a"], "a", off), tm.Quiet(), subjects(mailsSince(mails, off)))
		})
	})
}

// Scenarios 5 and 6 share one pair: automatic failover is disabled and
// site a powered off, nothing moves until the operator fails over by
// hand; then site a comes back and must stay standby, following b.
func TestScenarios5And6ManualThenReturn(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		scenarios5And6(t, tm)
	})
}

func scenarios5And6(t *testing.T, tm Timers) {
	p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
	w := startWriter(t, "s56")
	waitSteady(t, p, w)
	var off time.Time

	t.Run("5 automatic failover disabled", func(t *testing.T) {
		disabled := time.Now()
		out := p.CLI(t, "a", "toolkit", "watchdog", "status", "--disable-automatic-failover", "0")
		t.Logf("site a: %s", strings.TrimSpace(out))
		// The switch is pair-wide: b must have it before a goes. It
		// travels in the log, whatever the heartbeat's timers.
		waitFor(t, 30*time.Second, "site b to see automatic failover disabled", func() (bool, string) {
			evs, _ := p.ReadLog(t, "b")
			return LastEvent(evs, "a", "AutomaticFailoverChanged") != nil, Types(evs)
		})
		off = p.PowerOff(t, "a")
		var blocked time.Time
		waitFor(t, tm.Limit(), "site b to decide it may not take over on its own", func() (bool, string) {
			evs, _ := p.ReadLog(t, "b")
			// Either the arbiter's verdict says so (it reads the switch
			// pair-wide, as the orchestrator does) or the orchestrator
			// records its guard blocking a beActive verdict.
			for _, ev := range evs {
				if ev.Site != "b" || !ev.Time.After(off) {
					continue
				}
				arbiterSays := ev.Type == "ArbitrationDecided" && verdictOf(ev).Branch == "standby-automatic-off"
				guardSays := ev.Type == "FailoverDecided" && strings.Contains(string(ev.Payload), "guard.automatic-off")
				if arbiterSays || guardSays {
					blocked = ev.Time
					return true, ""
				}
			}
			return false, Types(evs)
		})
		// One more arbitration round: the blocked decision must hold.
		time.Sleep(tm.Interval + arbiterProbeTimeout)
		logs := p.Logs(t)
		assertNothingMovedSince(t, logs, off)
		if got := p.VIPHolders(t); len(got) != 0 {
			t.Errorf("VIP holders %v while site a is off and b may not take over, want none", got)
		}
		req := time.Now()
		out = p.CLI(t, "b", "manualFailover", "-a", "--reason", "e2e scenario 5: site a is down")
		t.Logf("site b: %s", strings.TrimSpace(out))
		// The operator's failover waits for no timer: the peer is
		// already known unreachable, and a manual takeover claims nothing.
		bActive := waitRole(t, p, "b", "active", time.Minute)
		waitVIPOn(t, p, "b")
		acked := w.Status().Acked
		waitWritesPast(t, w, acked)
		b := p.Logs(t)["b"]
		logFigures(t, "5", tm, "%s, blocked decision %s after the power off, manual request → active %s",
			readTakeover(b, "b", off).figures(off), since(blocked, off), since(bActive, req))
		mails := p.Mails(t)
		if len(mailsSince(mails, disabled, "automatic failover disabled")) == 0 {
			t.Errorf("no mail says automatic failover is disabled: %s", subjects(mails))
		}
		if len(mailsSince(mails, off, "site b is now active")) == 0 {
			t.Errorf("no mail says site b became active: %s", subjects(mails))
		}
	})
	if t.Failed() {
		return
	}

	t.Run("6 old active returns", func(t *testing.T) {
		stop := p.SampleVIP(t, 100*time.Millisecond)
		on := time.Now()
		p.PowerOn(t, "a")
		aStandby := waitRole(t, p, "a", "standby", tm.Limit())
		// Failback is manual: a stays standby while b serves, through
		// a's first heartbeat rounds and any arbitration they start.
		time.Sleep(tm.Quiet())
		samples := stop()
		logs := p.Logs(t)
		if rc := RoleChanges("a", logs["a"]); rc[len(rc)-1].To != "standby" {
			t.Errorf("site a's last role %+v, want standby", rc[len(rc)-1])
		}
		if rc := RoleChanges("b", logs["b"]); rc[len(rc)-1].To != "active" {
			t.Errorf("site b's last role %+v, want active", rc[len(rc)-1])
		}
		wantVIP(t, p, "b")
		assertNeverTwoActive(t, logs, []checker.Down{{Site: "a", At: off}}, samples)
		// a's MariaDB follows b now: the orchestrator's repoint, carried
		// out by dbmonitor.
		waitFor(t, time.Minute, "site a's MariaDB re-pointed at b", func() (bool, string) {
			out, _ := p.TryExec(p.Sites["a"].MariaDB, "mariadb", "-e", "SHOW SLAVE STATUS\\G")
			return strings.Contains(out, "Master_Host: "+sitesAddrs["b"].wan), out
		})
		// A power cut under write load can leave a transaction committed
		// on a that never reached b (the client got no answer and wrote
		// the row again on b): a's GTID history diverged, dbmonitor says
		// so (ReplicationDiverged, a mail naming the resync) and the
		// operator resyncs: the test publishes the DatabaseCommand that
		// `drwatch db resync --database mysql`, named in the mail, sends.
		time.Sleep(5 * time.Second)
		if evs, _ := p.ReadLog(t, "a"); FirstEvent(evs, "a", "ReplicationDiverged", on).IsZero() == false {
			t.Logf("site a's MariaDB diverged from b (a transaction cut off by the power cut); resyncing from b")
			cmd := p.Publish(t, "a", events.DatabaseCommand{Command: "resync", Database: events.MySQL, Target: "a"})
			waitFor(t, 2*time.Minute, "the resync answered", func() (bool, string) {
				evs, _ := p.ReadLog(t, "a")
				for _, ev := range evs {
					if ev.Type == "DatabaseCommandDone" && strings.Contains(string(ev.Payload), `"resync"`) && ev.Time.After(cmd.Time) {
						return true, string(ev.Payload)
					}
				}
				return false, ""
			})
		}
		waitFor(t, time.Minute, "site a's MariaDB replicating from b", func() (bool, string) {
			out, _ := p.TryExec(p.Sites["a"].MariaDB, "mariadb", "-e", "SHOW SLAVE STATUS\\G")
			return strings.Contains(out, "Master_Host: "+sitesAddrs["b"].wan) && strings.Contains(out, "Slave_IO_Running: Yes") &&
				strings.Contains(out, "Slave_SQL_Running: Yes"), out
		})
		acked := w.Status().Acked
		waitFor(t, 30*time.Second, "rows written on b to reach a", func() (bool, string) {
			n := p.MariaDB(t, "a", "SELECT count(*) FROM app.writes WHERE writer='s56' AND seq <= "+fmt.Sprint(acked))
			return n == fmt.Sprint(acked), n + " of " + fmt.Sprint(acked)
		})
		if ro := p.MariaDB(t, "a", "SELECT @@global.read_only"); ro != "1" {
			t.Errorf("site a's MariaDB read_only = %s as a standby, want 1", ro)
		}
		// a's PostgreSQL, a primary when the power went, is rewound into
		// a standby of b by dbmonitor (beside it in its container) and
		// streams what b writes.
		waitFor(t, 2*time.Minute, "site a's PostgreSQL streaming from b", func() (bool, string) {
			out, _ := p.TryExec(p.Sites["a"].Postgres, "psql", "-U", "postgres", "-tA", "-c", "SELECT status || ' ' || sender_host FROM pg_stat_wal_receiver")
			return strings.TrimSpace(out) == "streaming "+sitesAddrs["b"].wan, out
		})
		p.Exec(t, p.Sites["b"].Postgres, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE e2e_s6 (note text); INSERT INTO e2e_s6 VALUES ('written on b')")
		waitFor(t, 30*time.Second, "b's PostgreSQL row on a", func() (bool, string) {
			out, _ := p.TryExec(p.Sites["a"].Postgres, "psql", "-U", "postgres", "-tA", "-c", "SELECT note FROM e2e_s6")
			return strings.TrimSpace(out) == "written on b", out
		})
		// When dbmonitor answered the orchestrator's repoint of PostgreSQL.
		var pgRewound time.Time
		evsA, _ := p.ReadLog(t, "a")
		for _, ev := range evsA {
			pl := string(ev.Payload)
			if ev.Site == "a" && ev.Type == "DatabaseCommandDone" && ev.Time.After(on) && strings.Contains(pl, `"command":"repoint"`) &&
				strings.Contains(pl, `"database":"pgsql"`) && strings.Contains(pl, `"ok":true`) {
				pgRewound = ev.Time
				break
			}
		}
		onA := 0
		for _, s := range samples {
			if slices.Contains(s.Holders, "a") {
				onA++
			}
		}
		logFigures(t, "6", tm, "power on → a standby %s, the VIP on a in %d of %d samples, nothing moved in %s after; a's PostgreSQL rewound into b's standby %s after power on",
			since(aStandby, on), onA, len(samples), tm.Quiet(), since(pgRewound, on))
		if t.Failed() {
			t.Logf("site a's log: %s", Types(logs["a"]))
		}
	})
	if t.Failed() {
		return
	}

	// The round trip: b fails in turn, and a — both its databases
	// following b since 6 — takes over again (on the operator's word:
	// automatic failover is still off from 5) with what b wrote.
	t.Run("6b b fails: a takes over again with both databases", func(t *testing.T) {
		offB := p.PowerOff(t, "b")
		waitFor(t, tm.Limit(), "site a to find b unreachable", func() (bool, string) {
			evs, _ := p.ReadLog(t, "a")
			return !FirstEvent(evs, "a", "RemoteUnreachable", offB).IsZero(), Types(evs)
		})
		req := time.Now()
		out := p.CLI(t, "a", "manualFailover", "-a", "--reason", "e2e scenario 6b: site b is down")
		t.Logf("site a: %s", strings.TrimSpace(out))
		aActive := waitRole(t, p, "a", "active", time.Minute)
		waitVIPOn(t, p, "a")
		acked := w.Status().Acked
		waitWritesPast(t, w, acked)
		if n := p.MariaDB(t, "a", "SELECT count(*) FROM app.writes WHERE writer='s56' AND seq <= "+fmt.Sprint(acked)); n != fmt.Sprint(acked) {
			t.Errorf("site a's MariaDB has %s of the %d rows acknowledged before it took over again", n, acked)
		}
		pg := func(q string) string {
			return strings.TrimSpace(p.Exec(t, p.Sites["a"].Postgres, "psql", "-U", "postgres", "-tA", "-c", q))
		}
		if got := pg("SELECT pg_is_in_recovery()::text || ' ' || current_setting('default_transaction_read_only')"); got != "false off" {
			t.Errorf("site a's PostgreSQL in recovery / read-only: %q once active, want \"false off\"", got)
		}
		if got := pg("SELECT note FROM e2e_s6"); got != "written on b" {
			t.Errorf("site a's PostgreSQL lacks b's row: %q", got)
		}
		logFigures(t, "6b", tm, "request → a active %s", since(aActive, req))
	})
}

// Scenario 7: a planned switchover (manualFailover on the standby) under
// write load loses no acknowledged row. Its limits are not the timers':
// the peer answers, so the switchover waits for its stand-down, not for a
// detection or a verdict.
func TestScenario7PlannedSwitchover(t *testing.T) {
	forEachTimers(t, func(t *testing.T, tm Timers) {
		p := StartPair(t, PairOptions{Drwatch: true, Timers: tm})
		w := startWriter(t, "s7")
		waitSteady(t, p, w)
		stop := p.SampleVIP(t, 100*time.Millisecond)
		req := time.Now()
		out := p.CLI(t, "b", "manualFailover", "-a", "--reason", "e2e scenario 7: planned switchover")
		t.Logf("site b: %s", strings.TrimSpace(out))
		bActive := waitRole(t, p, "b", "active", time.Minute)
		aStandby := waitRole(t, p, "a", "standby", 10*time.Second)
		waitVIPOn(t, p, "b")
		ackedAtActive := w.Status().Acked
		waitWritesPast(t, w, ackedAtActive)
		samples := stop()
		acked := w.Status().Acked
		var present int64
		if err := DB(t, sitesAddrs["b"].wan).QueryRow("SELECT count(*) FROM app.writes WHERE writer='s7' AND seq <= ?", acked).Scan(&present); err != nil {
			t.Fatal(err)
		}
		if present != acked {
			t.Errorf("site b, the new primary, holds %d of the %d acknowledged rows", present, acked)
		}
		logs := p.Logs(t)
		assertNeverTwoActive(t, logs, nil, samples)
		b := logs["b"]
		logFigures(t, "7", tm, "%s, request → b active %s, a standby %s after the request, client outage %s, rows lost %d of %d acknowledged",
			readTakeover(b, "b", req).figures(req), since(bActive, req), since(aStandby, req), w.Status().LongestGap.Round(time.Millisecond), acked-present, acked)
		if t.Failed() {
			t.Logf("site a's log: %s", Types(logs["a"]))
			t.Logf("site b's log: %s", Types(b))
		}
	})
}
