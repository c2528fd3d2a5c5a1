package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Figures the timing contract counts that the site file does not set.
const (
	// decisionTick is the orchestrator's tick (its Options.Tick): a
	// verdict that arrives while it decides is acted on within one.
	decisionTick = time.Second
	// dbTimeout bounds one promotion or demotion by dbmonitor (the
	// orchestrator's Options.DBTimeout).
	dbTimeout = 2 * time.Minute
	// slack is what the bounds leave for what they do not count: the hops
	// between services through the site's log (milliseconds each, more
	// when fsync meets a loaded disk) and timers that fire late on a busy
	// host.
	slack = 2 * time.Second
	// minStartupHold is the startup hold under a fast heartbeat: the
	// leafnode link must come up and the peer's log be read within it.
	minStartupHold = time.Minute
	// pgFenceReloadWait is how long dbmonitor's PostgreSQL fence waits for
	// its reload to reach new sessions (fenceReloadTimeout in
	// services/dbmonitor/internal/pgrepl); a self-fence bound below it
	// would be broken by the fence itself.
	pgFenceReloadWait = 5 * time.Second
)

// Timing is every failover timing that depends on others, derived in one
// place (Config.Timing) so that the services read it instead of computing
// their own, and cross-checked (Checks) by Validate and drwatch validate.
//
// The contract: an active site cut off from its peer and from its arbiters
// releases the VIP and makes its databases read-only (SelfFence) before
// the standby can complete a takeover (EarliestTakeover). Both are counted
// from the cut: the moment after which no packet passes between the two
// sites, nor between the active site and its arbiters. Before the cut the
// links may lose packets, but no whole heartbeat round fails. It assumes
// the active's orchestrator is not busy with another saga when its verdict
// comes.
type Timing struct {
	// DetectionBest is the earliest, after the cut, that the heartbeat
	// declares the peer unreachable (every line down): retries × timeout
	// when a line probes a VIP — its attempts are a timeout apart from the
	// round's start even when each fails at once — else 0, since a line of
	// nodes alone probes them once and they may fail at once.
	DetectionBest time.Duration
	// DetectionWorst is the latest, after the last reply (so after the
	// cut too), that it does: the next round starts up to an interval
	// later, and in it every VIP attempt times out ((retries + 1) ×
	// timeout), then the nodes, probed together, do (one timeout):
	// interval + (retries + 2) × timeout for a line with a VIP and nodes.
	DetectionWorst time.Duration
	// ActiveVerdict bounds the isolated active's arbitration once the peer
	// is declared unreachable: the arbiter service runs one round at a
	// time, so the round in flight ends first, then the one that decides.
	// With device arbitration a round pings the arbiters and, beside the
	// pings, lists this site's managing sessions on them: a probeTimeout
	// each, two while the sessions are still being opened, so 2 × 2 ×
	// probeTimeout. With isCustom it pings, then runs the script: 2 ×
	// (probeTimeout + scriptTimeout).
	ActiveVerdict time.Duration
	// DecisionTick is the orchestrator's tick.
	DecisionTick time.Duration
	// SelfFenceTimeout is failover.selfFenceTimeout: the VIP released and
	// the databases read-only, first in the stand-down, hooks and service
	// stops after.
	SelfFenceTimeout time.Duration
	// SelfFence (F) is the latest, after the cut, that the isolated
	// active has released the VIP and fenced its databases:
	// DetectionWorst + ActiveVerdict + DecisionTick + SelfFenceTimeout.
	SelfFence time.Duration
	// TakeoverHold (H) is how long after its last reply from the peer a
	// standby's takeover may complete its claim of the arbiters. The last
	// reply precedes the cut by less than DetectionWorst (on a lossy link
	// a round may fail in part before the cut, and the round before it
	// answered), so H = SelfFence + DetectionWorst + slack keeps every
	// takeover past F. Counted from anything later than the last reply —
	// RemoteUnreachable.Since, the start of the round that found the peer
	// gone, the latest of the lines — it holds longer, still safe.
	TakeoverHold time.Duration
	// SessionEvidence is the earliest, after the cut, that an arbiter can
	// stop listing the isolated active's managing session, by which the
	// standby sees the active still there: sshd drops it
	// arbiterSessionTimeout after the last packet it got, and the active's
	// keepalives come every probeTimeout, so arbiterSessionTimeout −
	// probeTimeout. It guards only with device arbitration (0 with no
	// arbiters or a custom script), and only while the active held
	// sessions on at least the failover share of the arbiters at the cut:
	// with fewer the standby may count too few managed at once.
	SessionEvidence time.Duration
	// EarliestTakeover is the earliest, after the cut, that the standby
	// can complete a takeover: max(TakeoverHold − DetectionWorst,
	// DetectionBest, SessionEvidence). The contract is EarliestTakeover >
	// SelfFence.
	EarliestTakeover time.Duration
	// ClaimTimeout bounds the orchestrator's wait for the arbiter
	// service's answer to a claim: a round in flight in the service's loop
	// (probeTimeout: a standby holds no sessions to list before it
	// claims), then the claim's own deadline (interval + 4 ×
	// probeTimeout), 6 s for the first dials' extra second and the answer
	// to cross the log. 0 when this site cannot claim (no arbiters, or a
	// custom script): takeovers then rest on the verdict alone.
	ClaimTimeout time.Duration
	// DBTimeout bounds one promotion or demotion by dbmonitor.
	DBTimeout time.Duration
	// RestartYield is how long a site that stood down on restart leaves
	// the peer to take over and show its sessions before a verdict may
	// promote it again. The peer's verdict comes within one of its rounds
	// (interval), and its takeover completes its claim no sooner than its
	// hold allows (TakeoverHold after its last reply from this site, which
	// came before this site went down, so before the stand-down); then it
	// dials its sessions (2 × probeTimeout: a round's probes and the
	// login), promotes the databases (DBTimeout, when configured) and runs
	// the veto, preS2M and postS2M hooks (hooks.timeout each, when set).
	RestartYield time.Duration
	// StartupHold bounds how long a site restarted active waits to learn
	// the peer's latest role before it resumes on its own authority: at
	// least DetectionWorst, so that a peer gone while this site was down
	// is declared unreachable within it (the site then stands down), and
	// at least a minute for the leafnode link and the peer's log.
	StartupHold time.Duration
	// ConfirmTimeout is how long the arbiter service, started with an
	// active role in the log, waits for the orchestrator to confirm it
	// before holding its managing sessions anyway: it must outlast the
	// startup hold and the claim that may end it, StartupHold +
	// ClaimTimeout + slack.
	ConfirmTimeout time.Duration

	// Figures are the figures above with the formulas they came from, in
	// the order they were derived.
	Figures []Figure
}

// Figure is one derived timing with the formula it came from.
type Figure struct {
	Name  string
	Value time.Duration
	// Formula names the terms, then their values: "interval + (retries +
	// 2) × timeout = 30s + 6 × 5s".
	Formula string
	// Why says what the figure bounds.
	Why string
}

// MarshalJSON writes the value both as Go prints it and in seconds.
func (f Figure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string  `json:"name"`
		Value   string  `json:"value"`
		Seconds float64 `json:"seconds"`
		Formula string  `json:"formula"`
		Why     string  `json:"why"`
	}{f.Name, f.Value.String(), f.Value.Seconds(), f.Formula, f.Why})
}

// figures records each figure as it is derived.
type figures []Figure

func (fs *figures) add(name string, v time.Duration, why, formula string, args ...any) time.Duration {
	*fs = append(*fs, Figure{Name: name, Value: v, Formula: fmt.Sprintf(formula, args...), Why: why})
	return v
}

// line is what a heartbeat line probes, which sets how long its rounds
// take.
type line struct{ vip, nodes bool }

// lines are the heartbeat lines the heartbeat probes (HeartbeatLineNames).
func (c *Config) lines() []line {
	var ls []line
	if c.Core.PeerVIP != "" || len(c.Core.PeerLoadBalancerNodes) > 0 {
		ls = append(ls, line{vip: c.Core.PeerVIP != "", nodes: len(c.Core.PeerLoadBalancerNodes) > 0})
	}
	for _, l := range c.Watchdog.Heartbeat.Lines {
		if !l.Disable {
			ls = append(ls, line{vip: l.VIP != "", nodes: len(l.Nodes) > 0})
		}
	}
	return ls
}

// Timing derives the failover timings from the configuration; see Timing
// for each formula. The configuration should be valid (Validate checks
// the figures with Checks).
func (c *Config) Timing() Timing {
	hb := c.Watchdog.Heartbeat
	fd := c.Watchdog.FailureDetection
	interval, timeout, retries := hb.Interval.D(), hb.Timeout.D(), hb.Retries
	probe := fd.ProbeTimeout.D()
	// Device arbitration holds managing sessions and claims them; a
	// custom script or no arbiter at all does neither.
	sessions := len(fd.Arbiters) > 0 && !fd.IsCustom
	t := Timing{DecisionTick: decisionTick, DBTimeout: dbTimeout, SelfFenceTimeout: c.Failover.SelfFenceTimeout.D()}
	var fs figures

	// Every line must be down: the slowest line bounds the worst case,
	// and a line with a VIP the best.
	ls := c.lines()
	noLines := len(ls) == 0
	if noLines {
		// Nothing declares the peer unreachable, so nothing fails over;
		// the figures are those of the seed's default line.
		ls = []line{{vip: true, nodes: true}}
	}
	anyVIP, slowest, slowestRound := false, line{}, time.Duration(-1)
	for _, l := range ls {
		var round time.Duration
		if l.vip {
			anyVIP = true
			round += time.Duration(retries+1) * timeout
		}
		if l.nodes {
			round += timeout
		}
		if round > slowestRound {
			slowest, slowestRound = l, round
		}
	}
	note := ""
	if noLines {
		note = " (no heartbeat line is configured, so nothing declares the peer unreachable; figures of a line with a VIP and nodes)"
	}
	if anyVIP {
		t.DetectionBest = fs.add("detectionBest", time.Duration(retries)*timeout,
			"earliest the heartbeat declares the peer unreachable after the cut: a line's VIP attempts are a timeout apart even when each fails at once"+note,
			"retries × timeout = %d × %s", retries, timeout)
	} else {
		t.DetectionBest = fs.add("detectionBest", 0,
			"earliest the heartbeat declares the peer unreachable after the cut: no line probes a VIP, and nodes probed once may fail at once",
			"0")
	}
	worstWhy := "latest the heartbeat declares the peer unreachable after the last reply: the next round starts up to an interval later and every probe in it times out" + note
	switch {
	case slowest.vip && slowest.nodes:
		t.DetectionWorst = fs.add("detectionWorst", interval+slowestRound, worstWhy,
			"interval + (retries + 2) × timeout = %s + %d × %s", interval, retries+2, timeout)
	case slowest.vip:
		t.DetectionWorst = fs.add("detectionWorst", interval+slowestRound, worstWhy,
			"interval + (retries + 1) × timeout = %s + %d × %s", interval, retries+1, timeout)
	default:
		t.DetectionWorst = fs.add("detectionWorst", interval+slowestRound, worstWhy,
			"interval + timeout = %s + %s", interval, timeout)
	}

	verdictWhy := "the isolated active's verdict after detection: the arbiter service's round in flight, then the one that decides"
	if fd.IsCustom {
		t.ActiveVerdict = fs.add("activeVerdict", 2*(probe+fd.ScriptTimeout.D()), verdictWhy+"; each pings, then runs the script",
			"2 × (probeTimeout + scriptTimeout) = 2 × (%s + %s)", probe, fd.ScriptTimeout.D())
	} else {
		t.ActiveVerdict = fs.add("activeVerdict", 4*probe, verdictWhy+"; each lists this site's sessions on the arbiters, two probe timeouts while they are being opened",
			"2 × 2 × probeTimeout = 4 × %s", probe)
	}
	fs.add("decisionTick", t.DecisionTick, "the orchestrator acts on a verdict within one tick", "fixed: the orchestrator's tick")
	fs.add("selfFenceTimeout", t.SelfFenceTimeout, "the stand-down releases the VIP and makes the databases read-only within it, before hooks and service stops",
		"failover.selfFenceTimeout")
	t.SelfFence = fs.add("selfFence", t.DetectionWorst+t.ActiveVerdict+t.DecisionTick+t.SelfFenceTimeout,
		"F: latest, after the cut, that the isolated active has released the VIP and fenced its databases",
		"detectionWorst + activeVerdict + decisionTick + selfFenceTimeout = %s + %s + %s + %s",
		t.DetectionWorst, t.ActiveVerdict, t.DecisionTick, t.SelfFenceTimeout)
	t.TakeoverHold = fs.add("takeoverHold", t.SelfFence+t.DetectionWorst+slack,
		"H: a takeover completes its claim no sooner than this after the standby's last reply from the peer, which precedes the cut by less than detectionWorst",
		"selfFence + detectionWorst + slack = %s + %s + %s", t.SelfFence, t.DetectionWorst, slack)
	if sessions {
		t.SessionEvidence = fs.add("sessionEvidence", max(0, fd.ArbiterSessionTimeout.D()-probe),
			"earliest, after the cut, that an arbiter stops listing the isolated active's session (sshd counts from the active's last keepalive); it guards while the active held sessions on at least the failover share",
			"arbiterSessionTimeout − probeTimeout = %s − %s", fd.ArbiterSessionTimeout.D(), probe)
	} else {
		t.SessionEvidence = fs.add("sessionEvidence", 0,
			"no managing sessions: no arbiter is configured, or a custom script decides", "0")
	}
	t.EarliestTakeover = fs.add("earliestTakeover", max(t.TakeoverHold-t.DetectionWorst, t.DetectionBest, t.SessionEvidence),
		"earliest, after the cut, that the standby completes a takeover",
		"max(takeoverHold − detectionWorst, detectionBest, sessionEvidence) = max(%s, %s, %s)",
		t.TakeoverHold-t.DetectionWorst, t.DetectionBest, t.SessionEvidence)

	if sessions {
		t.ClaimTimeout = fs.add("claimTimeout", interval+5*probe+6*time.Second,
			"the orchestrator's wait for the answer to a claim: a round in flight in the arbiter service, the claim's deadline, the first dials' extra second and the way back",
			"interval + 5 × probeTimeout + 6s = %s + 5 × %s + 6s", interval, probe)
	} else {
		t.ClaimTimeout = fs.add("claimTimeout", 0,
			"this site cannot claim (no arbiter, or a custom script): takeovers rest on the verdict alone", "0")
	}
	fs.add("dbTimeout", t.DBTimeout, "bounds one promotion or demotion by dbmonitor", "fixed: the orchestrator's database timeout")

	y := max(interval, t.TakeoverHold) + 2*probe
	terms := []string{"max(interval, takeoverHold) + 2 × probeTimeout"}
	vals := []string{fmt.Sprintf("max(%s, %s) + 2 × %s", interval, t.TakeoverHold, probe)}
	if c.MySQL.Enabled || c.PgSQL.Enabled {
		y += t.DBTimeout
		terms, vals = append(terms, "dbTimeout"), append(vals, t.DBTimeout.String())
	}
	if n := countSet(c.Failover.VetoHook, c.Hooks.PreS2M, c.Hooks.PostS2M); n > 0 {
		y += time.Duration(n) * c.Hooks.Timeout.D()
		terms, vals = append(terms, fmt.Sprintf("%d × hooks.timeout", n)), append(vals, fmt.Sprintf("%d × %s", n, c.Hooks.Timeout.D()))
	}
	t.RestartYield = fs.add("restartYield", y,
		"a site that stood down on restart leaves the peer this long to take over (verdict, hold, sessions, promotion, hooks) before a verdict promotes it",
		"%s = %s", strings.Join(terms, " + "), strings.Join(vals, " + "))

	t.StartupHold = fs.add("startupHold", max(minStartupHold, t.DetectionWorst),
		"a site restarted active waits this long to learn the peer's role; a peer gone meanwhile is declared unreachable within it",
		"max(1m, detectionWorst) = max(1m0s, %s)", t.DetectionWorst)
	t.ConfirmTimeout = fs.add("confirmTimeout", t.StartupHold+t.ClaimTimeout+slack,
		"the arbiter service holds its managing sessions after this even unconfirmed: it outlasts the startup hold and the claim that may end it",
		"startupHold + claimTimeout + slack = %s + %s + %s", t.StartupHold, t.ClaimTimeout, slack)
	t.Figures = fs
	return t
}

func countSet(paths ...string) int {
	n := 0
	for _, p := range paths {
		if p != "" {
			n++
		}
	}
	return n
}

// Check is one inequality between the figures.
type Check struct {
	Name string `json:"name"`
	// Inequality with its values: "earliestTakeover 1m23s > selfFence
	// 1m21s".
	Inequality string `json:"inequality"`
	Holds      bool   `json:"holds"`
	// Required: Validate rejects a configuration that breaks it. The
	// others inform the operator.
	Required bool `json:"required"`
	// Field names the keys to change and Fix how, should it not hold.
	Field string `json:"field"`
	Fix   string `json:"fix"`
}

// Checks are the inequalities the figures must keep. The derivation makes
// the required ones hold; checking them anyway, as etcd's Config.Validate
// checks its timings against each other, catches a change to one formula
// that breaks another, and any overflow.
func (t Timing) Checks() []Check {
	check := func(name string, holds, required bool, field, fix, format string, args ...any) Check {
		return Check{Name: name, Inequality: fmt.Sprintf(format, args...), Holds: holds, Required: required, Field: field, Fix: fix}
	}
	cs := []Check{
		check("contract", t.EarliestTakeover > t.SelfFence && t.SelfFence > 0, true,
			"failover.selfFenceTimeout",
			"the standby could complete a takeover while the isolated active still holds the VIP or writable databases; lower failover.selfFenceTimeout or the heartbeat's timers",
			"earliestTakeover %s > selfFence %s", t.EarliestTakeover, t.SelfFence),
		check("startupHold", t.StartupHold >= t.DetectionWorst, true,
			"watchdog.heartbeat.interval",
			"a site restarted active would resume before its heartbeat could declare a dead peer unreachable; lower the heartbeat's timers",
			"startupHold %s >= detectionWorst %s", t.StartupHold, t.DetectionWorst),
		check("confirmTimeout", t.ConfirmTimeout > t.StartupHold+t.ClaimTimeout, true,
			"watchdog.failureDetection.probeTimeout",
			"the arbiter service would hold managing sessions for a restarted active its orchestrator has not confirmed; lower probeTimeout or the heartbeat's timers",
			"confirmTimeout %s > startupHold %s + claimTimeout %s", t.ConfirmTimeout, t.StartupHold, t.ClaimTimeout),
		check("restartYield", t.RestartYield > t.TakeoverHold, true,
			"watchdog.heartbeat.interval",
			"a site that stood down on restart could promote while the peer's takeover is still in its hold; lower the heartbeat's timers",
			"restartYield %s > takeoverHold %s", t.RestartYield, t.TakeoverHold),
	}
	if t.SessionEvidence > 0 {
		cs = append(cs, check("sessionsAlone", t.SessionEvidence > t.SelfFence, false,
			"watchdog.failureDetection.arbiterSessionTimeout",
			"the takeover hold alone keeps the contract; for the arbiter sessions to keep it too, raise the arbiters' ClientAliveInterval × ClientAliveCountMax (and arbiterSessionTimeout with it) above selfFence + probeTimeout",
			"sessionEvidence %s > selfFence %s", t.SessionEvidence, t.SelfFence))
	}
	return cs
}

// Setting is one key of the site file and its value, as written there.
type Setting struct{ Key, Value string }

// PairWide lists the settings both sites of a pair must share: the
// heartbeat's timers, the arbitration thresholds and timers, the automatic
// switch's default, the failback policy, the block window and the lag
// limits. Two sites that read one failure with different values decide
// apart (one fences itself at a share the other does not take over at);
// the orchestrator records these (events.PairSettings) and reports any
// difference from the peer's.
func (c *Config) PairWide() []Setting {
	hb, fd, f := c.Watchdog.Heartbeat, c.Watchdog.FailureDetection, c.Failover
	share := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return []Setting{
		{"watchdog.heartbeat.interval", hb.Interval.D().String()},
		{"watchdog.heartbeat.timeout", hb.Timeout.D().String()},
		{"watchdog.heartbeat.retries", strconv.Itoa(hb.Retries)},
		{"watchdog.failureDetection.isCustom", strconv.FormatBool(fd.IsCustom)},
		{"watchdog.failureDetection.threshold.failover", share(fd.Threshold.Failover)},
		{"watchdog.failureDetection.threshold.adjustManaged", share(fd.Threshold.AdjustManaged)},
		{"watchdog.failureDetection.threshold.warning", share(fd.Threshold.Warning)},
		{"watchdog.failureDetection.waitDuration", fd.WaitDuration.D().String()},
		{"watchdog.failureDetection.probeTimeout", fd.ProbeTimeout.D().String()},
		{"watchdog.failureDetection.arbiterSessionTimeout", fd.ArbiterSessionTimeout.D().String()},
		{"watchdog.failureDetection.arbiters", strconv.Itoa(len(fd.Arbiters))},
		{"failover.automatic", strconv.FormatBool(f.Automatic)},
		{"failover.failback", f.Failback},
		{"failover.blockWindow", f.BlockWindow.D().String()},
		{"failover.maxLagBytes", strconv.FormatInt(f.MaxLagBytes, 10)},
		{"failover.maxLagTransactions", strconv.FormatInt(f.MaxLagTransactions, 10)},
		{"failover.selfFenceTimeout", f.SelfFenceTimeout.D().String()},
	}
}
