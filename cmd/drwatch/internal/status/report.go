package status

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Check is one row of `drwatch health`.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Checks judges this site's health from the log at now. Connectivity
// checks (NATS, HTTP) are the caller's: they are I/O.
func (p *Projection) Checks(now time.Time) []Check {
	s := p.Sites[p.Self]
	var out []Check
	add := func(name string, ok bool, format string, args ...any) {
		out = append(out, Check{name, ok, fmt.Sprintf(format, args...)})
	}

	switch {
	case s.LastEvent.IsZero():
		add("watchdog", false, "no event from site %s in the log: the services never ran", p.Self)
	default:
		add("watchdog", true, "last event %s ago", age(now, s.LastEvent))
	}
	add("role", s.Role == events.RoleActive || s.Role == events.RoleStandby || s.Role == events.RoleStandalone,
		"%s, epoch %d%s", s.Role, s.Epoch, ifs(!s.RoleFromLog, " (configured; no RoleChanged yet)"))
	if p.Peer != "" {
		peer := p.Sites[p.Peer]
		if s.Role == events.RoleActive && peer.Role == events.RoleActive {
			add("split brain", false, "both %s and %s report active (epochs %d, %d)", p.Self, p.Peer, s.Epoch, peer.Epoch)
		}
	}

	if len(s.Lines) == 0 {
		add("heartbeat", true, "no peer probe reported yet")
	} else {
		for _, name := range sortedKeys(s.Lines) {
			l := s.Lines[name]
			add("heartbeat "+name, l.Reachable, "%s (%s ago)", orDash(l.Detail, ifs(l.Reachable, "peer answers", "peer unreachable")), age(now, l.At))
		}
	}
	if s.QuorumLow != "" {
		add("arbiters", false, "%s", s.QuorumLow)
	} else if a := s.Arbitration; a != nil {
		add("arbiters", true, "last verdict %s (%s), %d/%d reachable", a.Action, a.Branch, a.Reachable, a.N)
	}
	if st := s.states["arbiterMonitor"]; st != nil && st.code == CodeFailureDetectionFailed {
		add("failure detection", false, "%s", st.description)
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
			add(string(db.name)+" replication", true, "no report yet")
		default:
			add(string(db.name)+" replication", r.State == "ok", "%s%s", r.State, ifs(r.Detail != "", ": "+r.Detail))
		}
	}
	fs := s.FileSync
	switch {
	case fs.LastFailure.After(fs.LastOK):
		add("file sync", false, "failed %s ago: %s", age(now, fs.LastFailure), fs.Reason)
	case !fs.LastOK.IsZero():
		add("file sync", true, "last copy %s ago", age(now, fs.LastOK))
	}
	for _, name := range sortedKeys(s.Tripped) {
		add("monitor "+name, false, "%s", s.Tripped[name])
	}
	if s.ConfigOK != nil {
		add("config check", *s.ConfigOK, "%s", orDash(strings.Join(s.ConfigIssues, "; "), "ok"))
	}
	if f := s.LastFailover; f != nil {
		add("last failover", f.State != "aborted", "%s %s→%s %s%s", f.ID, f.From, f.To, f.State, ifs(f.State == "aborted", " at "+f.Step+": "+f.Reason))
	}
	a := p.Automatic
	add("automatic failover", true, "%s", a.Describe(now))
	return out
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
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, ifs(c.OK, "OK", "FAIL"), c.Detail)
	}
	_ = tw.Flush()
}

// Healthy reports whether every check passed.
func Healthy(checks []Check) bool {
	return !slices.ContainsFunc(checks, func(c Check) bool { return !c.OK })
}

// Pair is `drwatch status --json`.
type Pair struct {
	Self      events.SiteID `json:"self"`
	Peer      events.SiteID `json:"peer"`
	Time      time.Time     `json:"time"`
	Automatic Automatic     `json:"automaticFailover"`
	// AutomaticOn is Automatic evaluated at Time.
	AutomaticOn bool    `json:"automaticFailoverOn"`
	Sites       []*Site `json:"sites"`
}

// Pair returns both sites, this one first.
func (p *Projection) Pair(now time.Time) Pair {
	out := Pair{Self: p.Self, Peer: p.Peer, Time: now.UTC(), Automatic: p.Automatic, AutomaticOn: p.Automatic.On(now)}
	out.Sites = append(out.Sites, p.Sites[p.Self])
	if p.Peer != "" {
		out.Sites = append(out.Sites, p.Sites[p.Peer])
	}
	return out
}

// WritePair prints one screen in the manner of cmviewcl -v / patronictl
// list: a row per site, then the details that explain it.
func WritePair(w io.Writer, pair Pair) {
	now := pair.Time
	fmt.Fprintf(w, "PAIR %s/%s   automatic failover: %s\n\n", pair.Self, pair.Peer, pair.Automatic.Describe(now))
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
