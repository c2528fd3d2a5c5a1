package status

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/pair"
)

// Level is a health check's verdict.
type Level string

// Levels, in increasing gravity.
const (
	LevelOK   Level = "OK"
	LevelWarn Level = "WARN"
	LevelFail Level = "FAIL"
)

func (l Level) rank() int {
	switch l {
	case LevelWarn:
		return 1
	case LevelFail:
		return 2
	}
	return 0
}

// Check is one row of `drwatch health`. OK is false only for FAIL, so
// scripts that read "ok" keep meaning "not failing".
type Check struct {
	Name   string `json:"name"`
	Level  Level  `json:"level"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Threshold names the limit the check compares with, when it has one.
	Threshold string `json:"threshold,omitempty"`
}

// Finish fills Level from OK where a caller set only OK, and OK from
// Level, so every check carries both.
func Finish(checks []Check) []Check {
	for i := range checks {
		c := &checks[i]
		if c.Level == "" {
			c.Level = LevelFail
			if c.OK {
				c.Level = LevelOK
			}
		}
		c.OK = c.Level != LevelFail
	}
	return checks
}

// Worst is the gravest level among checks.
func Worst(checks []Check) Level {
	w := LevelOK
	for _, c := range Finish(checks) {
		if c.Level.rank() > w.rank() {
			w = c.Level
		}
	}
	return w
}

// Checks judges this site's health from the log at now. Connectivity
// checks (NATS, HTTP) are the caller's: they are I/O. The thresholds are
// the configuration's where it has one (docs/cli.md lists them).
func (p *Projection) Checks(now time.Time) []Check {
	s := p.Sites[p.Self]
	var out []Check
	add := func(name string, level Level, threshold, format string, args ...any) {
		out = append(out, Check{Name: name, Level: level, Detail: fmt.Sprintf(format, args...), Threshold: threshold})
	}
	okIf := func(ok bool, otherwise Level) Level {
		if ok {
			return LevelOK
		}
		return otherwise
	}

	switch {
	case s.LastEvent.IsZero():
		add("watchdog", LevelFail, "", "no event from site %s in the log: the services never ran", p.Self)
	default:
		add("watchdog", LevelOK, "", "last event %s ago", age(now, s.LastEvent))
	}
	add("role", okIf(s.Role == events.RoleActive || s.Role == events.RoleStandby || s.Role == events.RoleStandalone, LevelFail), "",
		"%s, epoch %d%s", s.Role, s.Epoch, ifs(!s.RoleFromLog, " (configured; no RoleChanged yet)"))
	if p.Peer != "" {
		p.activeCheck(s, add)
	}

	if len(s.Lines) == 0 {
		add("heartbeat", LevelOK, "", "no peer probe reported yet")
	} else {
		for _, name := range sortedKeys(s.Lines) {
			l := s.Lines[name]
			add("heartbeat "+name, okIf(l.Reachable, LevelFail), "", "%s (%s ago)", orDash(l.Detail, ifs(l.Reachable, "peer answers", "peer unreachable")), age(now, l.At))
		}
	}
	th := p.cfg.Watchdog.FailureDetection.Threshold
	shares := fmt.Sprintf("warning %g, failover %g", th.Warning, th.Failover)
	if s.QuorumLow != "" {
		add("arbiters", okIf(s.quorumShare >= th.Failover, LevelFail), shares, "%s", s.QuorumLow)
		out[len(out)-1].Level = max2(out[len(out)-1].Level, LevelWarn)
	} else if a := s.Arbitration; a != nil {
		add("arbiters", LevelOK, shares, "last verdict %s (%s), %d/%d reachable", a.Action, a.Branch, a.Reachable, a.N)
	}
	if st := s.states["arbiterMonitor"]; st != nil && st.code == CodeFailureDetectionFailed {
		add("failure detection", LevelFail, "", "%s", st.description)
	}

	for _, db := range []struct {
		name    events.Database
		enabled bool
	}{{events.MySQL, p.cfg.MySQL.Enabled}, {events.PgSQL, p.cfg.PgSQL.Enabled}} {
		r := s.Replication[db.name]
		switch {
		case !db.enabled && r.State == "unknown":
			continue
		case r.State == "unknown":
			add(string(db.name)+" replication", LevelOK, "", "no report yet")
		default:
			add(string(db.name)+" replication", okIf(r.State == "ok", LevelFail), "", "%s%s", r.State, ifs(r.Detail != "", ": "+r.Detail))
		}
	}
	p.lagCheck(now, add)
	p.fileCheck(now, add)
	for _, name := range sortedKeys(s.Tripped) {
		add("monitor "+name, LevelFail, "", "%s", s.Tripped[name])
	}
	if s.ConfigOK != nil {
		add("config check", okIf(*s.ConfigOK, LevelFail), "", "%s", orDash(strings.Join(s.ConfigIssues, "; "), "ok"))
	}
	if f := s.LastFailover; f != nil {
		add("last failover", okIf(f.State != "aborted", LevelFail), "", "%s %s→%s %s%s", f.ID, f.From, f.To, f.State, ifs(f.State == "aborted", " at "+f.Step+": "+f.Reason))
	}
	a := p.Automatic
	add("automatic failover", okIf(a.On(now), LevelWarn), "", "%s", a.Describe(now))
	if p.cfg.Failover.ObserveOnly {
		add("observe-only", LevelWarn, "", "failover.observeOnly: decisions are recorded, never carried out")
	}
	if m := p.MaintenanceAt(now); m != nil {
		add("maintenance", LevelWarn, "", "pair %s %s by %s: %s", m.Mode, ifs(m.Until != nil, "until "+timeOr(m.Until), "until drwatch resume"), m.By, m.Reason)
	}
	window := "failover.blockWindow " + p.cfg.Failover.BlockWindow.D().String()
	if b := p.Block(now); b != nil {
		add("block window", LevelWarn, window, "automatic failover blocked until %s after the automatic failover %s completed at %s; `drwatch failover ack` lifts it",
			b.Until.UTC().Format(time.RFC3339), orDash(b.Failover, "-"), b.Since.UTC().Format(time.RFC3339))
	} else {
		add("block window", LevelOK, window, "%s", ifs(p.LastAck != nil && !p.State.LastFailoverAt.IsZero() && !p.LastAck.At.Before(p.State.LastFailoverAt),
			"none: last failover acknowledged", "none"))
	}
	if d := s.Decision; d != nil && (d.Blocked || d.ObserveOnly) {
		dd := *d
		dd.Until = p.heldUntil(&dd, now)
		add("held back", LevelWarn, "", "%s (%s ago)", DescribeDecision(&dd), age(now, d.At))
	}
	return Finish(out)
}

func max2(a, b Level) Level {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// activeCheck: exactly one site must be active. Both is a split brain;
// none is an outage unless a saga is moving the role right now.
func (p *Projection) activeCheck(s *Site, add func(string, Level, string, string, ...any)) {
	peer := p.Sites[p.Peer]
	switch {
	case s.Role == events.RoleActive && peer.Role == events.RoleActive:
		add("split brain", LevelFail, "", "both %s and %s report active (epochs %d, %d)", p.Self, p.Peer, s.Epoch, peer.Epoch)
	case s.Role == events.RoleActive || peer.Role == events.RoleActive:
		active := p.Self
		if peer.Role == events.RoleActive {
			active = p.Peer
		}
		add("active site", LevelOK, "", "%s is active", active)
	case p.State.SagaRunning() || p.State.PeerSagaRunning():
		add("active site", LevelWarn, "", "no site is active while a failover is in progress")
	case peer.Role == "unknown" || peer.Role == "":
		add("active site", LevelWarn, "", "%s is %s and %s's role has not reached this log", p.Self, s.Role, p.Peer)
	default:
		add("active site", LevelFail, "", "no site is active: %s is %s, %s is %s; run `drwatch failover --to SITE` (or wait for the liveness rule)", p.Self, s.Role, p.Peer, peer.Role)
	}
}

// LagLimits are the in-sync limits the orchestrator applies, from the
// configuration (the same derivation as services/orchestrator).
func (p *Projection) LagLimits() pair.LagLimits {
	return pair.LagLimits{
		MaxBytes: p.cfg.Failover.MaxLagBytes, MaxTransactions: p.cfg.Failover.MaxLagTransactions,
		MaxAge: 10 * max(p.cfg.MySQL.CheckInterval.D(), p.cfg.PgSQL.CheckInterval.D()),
	}
}

// lagCheck: on a standby, a replica out of sync means a takeover now
// would be refused (guard.lag) or, forced, lose writes.
func (p *Projection) lagCheck(now time.Time, add func(string, Level, string, string, ...any)) {
	if p.State.Role != events.RoleStandby || (!p.cfg.MySQL.Enabled && !p.cfg.PgSQL.Enabled) {
		return
	}
	lim := p.LagLimits()
	threshold := fmt.Sprintf("failover.maxLagBytes %d, failover.maxLagTransactions %d", lim.MaxBytes, lim.MaxTransactions)
	if ok, o := p.State.InSync(lim, now); !ok {
		add("replication lag", LevelWarn, threshold, "%s: an automatic takeover now would be refused (guard.lag)", o)
		return
	}
	add("replication lag", LevelOK, threshold, "within the limits (or no recent figure)")
}

// FileSyncPeriod is how often the standby is expected to copy the active
// site's files under file.restore: hourly when every hour is allowed,
// daily when only some are, weekly when only some days are.
func FileSyncPeriod(r config.Restore) time.Duration {
	d := time.Hour
	if strings.TrimSpace(r.HoursOfDay) != "*" {
		d = 24 * time.Hour
	}
	if strings.TrimSpace(r.DaysOfWeek) != "*" {
		d = 7 * 24 * time.Hour
	}
	return d
}

// fileCheck: the standby's last copy of the active site's files, WARN
// past two expected periods, FAIL past seven; nothing when no file is
// configured.
func (p *Projection) fileCheck(now time.Time, add func(string, Level, string, string, ...any)) {
	if len(p.cfg.File.Paths) == 0 && p.Sites[p.Self].FileSync.LastOK.IsZero() && p.Sites[p.Self].FileSync.LastFailure.IsZero() {
		return
	}
	// The standby copies; on the active site read the peer's record.
	s := p.Sites[p.Self]
	if s.Role == events.RoleActive && p.Peer != "" {
		s = p.Sites[p.Peer]
	}
	fs := s.FileSync
	period := FileSyncPeriod(p.cfg.File.Restore)
	warn, fail := 2*period, 7*period
	threshold := fmt.Sprintf("warn after %s, fail after %s (file.restore schedule)", warn, fail)
	switch {
	case fs.LastFailure.After(fs.LastOK):
		add("file sync", LevelFail, threshold, "site %s failed %s ago: %s", s.Name, age(now, fs.LastFailure), fs.Reason)
	case fs.LastOK.IsZero():
		add("file sync", LevelWarn, threshold, "no file copy by site %s recorded yet", s.Name)
	case now.Sub(fs.LastOK) > fail:
		add("file sync", LevelFail, threshold, "last copy by site %s %s ago", s.Name, age(now, fs.LastOK))
	case now.Sub(fs.LastOK) > warn:
		add("file sync", LevelWarn, threshold, "last copy by site %s %s ago", s.Name, age(now, fs.LastOK))
	default:
		add("file sync", LevelOK, threshold, "last copy by site %s %s ago", s.Name, age(now, fs.LastOK))
	}
}

// Describe says whether automatic failover is on and until when.
func (a Automatic) Describe(now time.Time) string {
	switch {
	case a.On(now):
		return "enabled" + ifs(a.Configured, " (failover.automatic)", "")
	case a.Until != nil:
		return "disabled until " + a.Until.UTC().Format(time.RFC3339) + ifs(a.By != "", " by "+a.By)
	default:
		return "disabled until enabled" + ifs(a.Configured, " (failover.automatic: false)", ifs(a.By != "", " by "+a.By))
	}
}

// WriteChecks prints the health table.
func WriteChecks(w io.Writer, checks []Check) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, c := range Finish(checks) {
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", c.Name, c.Level, c.Detail, ifs(c.Threshold != "", " ["+c.Threshold+"]"))
	}
	_ = tw.Flush()
}

// Healthy reports whether no check failed (warnings allowed).
func Healthy(checks []Check) bool {
	return !slices.ContainsFunc(Finish(checks), func(c Check) bool { return c.Level == LevelFail })
}

// Pair is `drwatch status --json`.
type Pair struct {
	Self      events.SiteID `json:"self"`
	Peer      events.SiteID `json:"peer"`
	Time      time.Time     `json:"time"`
	Automatic Automatic     `json:"automaticFailover"`
	// AutomaticOn is Automatic evaluated at Time.
	AutomaticOn bool `json:"automaticFailoverOn"`
	// ObserveOnly is failover.observeOnly: nothing automatic is carried out.
	ObserveOnly bool `json:"observeOnly"`
	// MaxEpoch is the highest epoch either site opened.
	MaxEpoch events.Epoch `json:"maxEpoch"`
	// VIPHolders are the sites whose last record says they hold the VIP
	// (one when all is well; none when no record or nobody holds it).
	VIPHolders []events.SiteID `json:"vipHolders"`
	// BlockWindow is the block window in force, nil when none.
	BlockWindow *BlockWindow `json:"blockWindow,omitempty"`
	// Maintenance is the pair's maintenance in force, nil when none.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	LastAck     *Ack         `json:"lastAcknowledgement,omitempty"`
	Sites       []*Site      `json:"sites"`
}

// Pair returns both sites, this one first.
func (p *Projection) Pair(now time.Time) Pair {
	p.decisions(now)
	out := Pair{Self: p.Self, Peer: p.Peer, Time: now.UTC(), Automatic: p.Automatic, AutomaticOn: p.Automatic.On(now),
		ObserveOnly: p.cfg.Failover.ObserveOnly, MaxEpoch: p.MaxEpoch, BlockWindow: p.Block(now), LastAck: p.LastAck, VIPHolders: []events.SiteID{}}
	out.Sites = append(out.Sites, p.Sites[p.Self])
	if p.Peer != "" {
		out.Sites = append(out.Sites, p.Sites[p.Peer])
	}
	out.Maintenance = p.MaintenanceAt(now)
	for _, s := range out.Sites {
		if s.VIP != nil && s.VIP.Held {
			out.VIPHolders = append(out.VIPHolders, s.Name)
		}
	}
	return out
}

func vipLine(pair Pair) string {
	switch len(pair.VIPHolders) {
	case 0:
		return "no site recorded holding it"
	case 1:
		return "held by " + string(pair.VIPHolders[0])
	}
	return fmt.Sprintf("HELD BY %v", pair.VIPHolders)
}

// WritePair prints one screen in the manner of cmviewcl -v / patronictl
// list: a row per site, then the details that explain it.
func WritePair(w io.Writer, pair Pair) {
	now := pair.Time
	fmt.Fprintf(w, "PAIR %s/%s   epoch %d   VIP: %s   automatic failover: %s%s\n", pair.Self, pair.Peer, pair.MaxEpoch, vipLine(pair), pair.Automatic.Describe(now), ifs(pair.ObserveOnly, "   OBSERVE-ONLY"))
	if m := pair.Maintenance; m != nil {
		fmt.Fprintf(w, "MAINTENANCE %s %s by %s: %s; end it with: drwatch resume\n", strings.ToUpper(m.Mode),
			ifs(m.Until != nil, "until "+timeOr(m.Until), "until drwatch resume"), m.By, m.Reason)
	}
	if b := pair.BlockWindow; b != nil {
		fmt.Fprintf(w, "BLOCKED automatic failover until %s (block window after %s completed %s ago); lift it with: drwatch failover ack\n",
			b.Until.UTC().Format(time.RFC3339), orDash(b.Failover, "the last automatic failover"), age(now, b.Since))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tEPOCH\tHEARTBEAT\tARBITERS\tMYSQL\tPGSQL\tFILE SYNC\tLAST EVENT")
	for _, s := range pair.Sites {
		name := string(s.Name)
		if s.Name == pair.Self {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Role, s.Epoch, heartbeatCell(s), arbiterCell(s),
			replCell(s.Replication[events.MySQL]), replCell(s.Replication[events.PgSQL]), fileCell(now, s.FileSync), ageCell(now, s.LastEvent))
	}
	_ = tw.Flush()
	for _, s := range pair.Sites {
		fmt.Fprintf(w, "\nsite %s\n", s.Name)
		for _, name := range sortedKeys(s.Lines) {
			l := s.Lines[name]
			fmt.Fprintf(w, "  heartbeat %-10s %s  %s (%s ago)\n", name, ifs(l.Reachable, "up  ", "DOWN"), l.Detail, age(now, l.At))
		}
		if a := s.Arbitration; a != nil {
			fmt.Fprintf(w, "  arbitration   %s via %s, branch %s: N=%d reachable=%d managed=%d unreachable=%d r=%.2f m=%.2f failover<%.2f (%s ago)\n",
				a.Action, a.Method, a.Branch, a.N, a.Reachable, a.Managed, a.Unreachable, a.ReachableShare, a.ManagedShare, a.Failover, age(now, a.At))
		}
		if s.QuorumLow != "" {
			fmt.Fprintf(w, "  arbiters      WARNING %s\n", s.QuorumLow)
		}
		for _, db := range []events.Database{events.MySQL, events.PgSQL} {
			if r := s.Replication[db]; r.State != "unknown" {
				fmt.Fprintf(w, "  %-13s %s lag %.0fs/%dB %s\n", string(db), r.State, r.LagSeconds, r.LagBytes, r.Detail)
			}
		}
		if s.FileSync.Reason != "" {
			fmt.Fprintf(w, "  file sync     last failure %s ago: %s\n", age(now, s.FileSync.LastFailure), s.FileSync.Reason)
		}
		for _, m := range sortedKeys(s.Tripped) {
			fmt.Fprintf(w, "  monitor       %s TRIPPED %s\n", m, s.Tripped[m])
		}
		if f := s.LastFailover; f != nil {
			fmt.Fprintf(w, "  last failover %s %s→%s %s%s (started %s ago)\n", f.ID, f.From, f.To, f.State, ifs(f.Step != "", " at step "+f.Step), age(now, f.StartedAt))
		}
		if v := s.VIP; v != nil {
			fmt.Fprintf(w, "  vip           %s (%s, %s ago)\n", ifs(v.Held, "held", "released"), v.By, age(now, v.At))
		}
		if d := s.Decision; d != nil && (d.Blocked || d.ObserveOnly) {
			fmt.Fprintf(w, "  decision      %s (%s ago)\n", DescribeDecision(d), age(now, d.At))
		}
	}
}

func heartbeatCell(s *Site) string {
	if len(s.Lines) == 0 {
		return "-"
	}
	up := 0
	for _, l := range s.Lines {
		if l.Reachable {
			up++
		}
	}
	return fmt.Sprintf("%d/%d up", up, len(s.Lines))
}

func arbiterCell(s *Site) string {
	if s.Arbitration == nil {
		return "-"
	}
	a := s.Arbitration
	return fmt.Sprintf("%d/%d %s", a.Reachable, a.N, a.Action)
}

func replCell(r *Replication) string {
	switch r.State {
	case "unknown":
		return "-"
	case "ok", "lag":
		return fmt.Sprintf("%s %.0fs", r.State, r.LagSeconds)
	}
	return r.State
}

func fileCell(now time.Time, f FileSync) string {
	switch {
	case f.LastFailure.After(f.LastOK):
		return "FAILED " + age(now, f.LastFailure) + " ago"
	case f.LastOK.IsZero():
		return "-"
	}
	return age(now, f.LastOK) + " ago"
}

func ageCell(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(now, t) + " ago"
}

func age(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func ifs(cond bool, yes string, no ...string) string {
	if cond {
		return yes
	}
	if len(no) > 0 {
		return no[0]
	}
	return ""
}

func orDash(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
