// Package rules is the notifier's table from events to mails: which event
// is mailed, under which dedupe kind and key, which event clears it, and the
// readable subject and body built from the event's payload. Everything here
// is pure.
package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Fact is one labelled line of evidence in a mail body.
type Fact struct{ Label, Value string }

// Alert is one notification an event asks for.
type Alert struct {
	// Site published the event; Kind and Key name the error, so the same
	// error of the same site dedupes whatever event reports it.
	Site     events.SiteID
	Kind     string
	Key      string
	Recovery bool
	Summary  string
	Since    time.Time
	Facts    []Fact
	Tried    string
	Todo     string
	Env      *events.Envelope
}

// DedupeKey is site/kind/key.
func (a Alert) DedupeKey() string { return fmt.Sprintf("%s/%s/%s", a.Site, a.Kind, a.Key) }

// Rule maps one event type to the alerts it raises.
type Rule struct {
	Type events.Type
	// Kinds lists the error kinds the rule raises or, for a recovery rule,
	// clears.
	Kinds    []string
	Recovery bool
	// When says in words when the rule mails (for the README).
	When   string
	alerts func(env *events.Envelope) ([]Alert, error)
}

func rule[E events.Event](kinds []string, recovery bool, when string, fn func(env *events.Envelope, ev E) []Alert) Rule {
	t, _ := events.Handle[E](func(context.Context, *events.Envelope, E) error { return nil })
	return Rule{Type: t, Kinds: kinds, Recovery: recovery, When: when, alerts: func(env *events.Envelope) ([]Alert, error) {
		ev, err := events.DecodeInto[E](env)
		if err != nil {
			return nil, err
		}
		as := fn(env, ev)
		for i := range as {
			a := &as[i]
			a.Site, a.Env, a.Recovery = env.Site, env, recovery
			if a.Kind == "" {
				a.Kind = kinds[0]
			}
			if a.Since.IsZero() {
				a.Since = env.Time
			}
		}
		return as, nil
	}}
}

func one(a Alert) []Alert { return []Alert{a} }

// Error kinds mailed. Most are the event type that raises them; the
// ArbitrationDecided verdict raises three kinds of its own.
const (
	KindTakeoverBlocked                = "TakeoverBlocked"
	KindFailoverDisabledByConnectivity = "AutomaticFailoverDisabledByConnectivity"
	KindCannotArbitrate                = "CannotArbitrate"
	KindArbiterSSHFailed               = "ArbiterSSHFailed"
)

// Table is the mapping event → mail. Order is documentation order.
func Table() []Rule {
	return []Rule{
		rule([]string{KindFailoverDisabledByConnectivity, KindCannotArbitrate, KindArbiterSSHFailed}, false,
			"a verdict that would move a role while automatic failover is off (or whose branch/description says failover is disabled); N = 0 arbiters; a standby that cannot log in to arbiters over SSH",
			arbitration),
		rule([]string{"AutomaticFailoverChanged"}, false, "automatic failover switched off (by an operator or the watchdog)",
			func(env *events.Envelope, ev events.AutomaticFailoverChanged) []Alert {
				if ev.Enabled {
					return nil
				}
				until := "until enabled again"
				if ev.Until != nil {
					until = "until " + ev.Until.UTC().Format(time.RFC3339)
				}
				return one(Alert{Summary: "automatic failover disabled " + until,
					Facts: []Fact{{"Reason", ev.Reason}, {"By", ev.By}, {"Disabled", until}},
					Todo:  "while disabled a dead active site is not replaced automatically; re-enable with `drwatch toolkit watchdog status --enable-automatic-failover`"})
			}),
		rule([]string{"AutomaticFailoverChanged"}, true, "automatic failover switched on again",
			func(env *events.Envelope, ev events.AutomaticFailoverChanged) []Alert {
				if !ev.Enabled {
					return nil
				}
				return one(Alert{Summary: "automatic failover enabled again", Facts: []Fact{{"Reason", ev.Reason}, {"By", ev.By}}})
			}),
		rule([]string{"MaintenanceChanged"}, false, "the pair paused or made observe-only (drwatch pause)",
			func(env *events.Envelope, ev events.MaintenanceChanged) []Alert {
				if ev.Mode == events.MaintenanceOff {
					return nil
				}
				until := "until drwatch resume"
				if ev.Until != nil {
					until = "until " + ev.Until.UTC().Format(time.RFC3339)
				}
				return one(Alert{Summary: "pair in maintenance (" + ev.Mode + ") " + until,
					Facts: []Fact{{"Mode", ev.Mode}, {"Reason", ev.Reason}, {"By", ev.By}, {"Until", until}},
					Todo:  "while in maintenance a dead active site is not replaced automatically; end it with `drwatch resume`"})
			}),
		rule([]string{"MaintenanceChanged"}, true, "maintenance over (drwatch resume)",
			func(env *events.Envelope, ev events.MaintenanceChanged) []Alert {
				if ev.Mode != events.MaintenanceOff {
					return nil
				}
				return one(Alert{Summary: "pair out of maintenance", Facts: []Fact{{"Reason", ev.Reason}, {"By", ev.By}}})
			}),
		rule([]string{"ArbiterQuorumLow"}, false, "always: reachable arbiters below threshold.warning",
			func(env *events.Envelope, ev events.ArbiterQuorumLow) []Alert {
				return one(Alert{Summary: fmt.Sprintf("only %d of %d arbiters reachable (%.0f%% < warning %.0f%%)", ev.Reachable, ev.N, ev.Share*100, ev.Warning*100),
					Facts: []Fact{{"Arbiters", fmt.Sprint(ev.N)}, {"Reachable", fmt.Sprint(ev.Reachable)}, {"Share", pct(ev.Share)}, {"Warning threshold", pct(ev.Warning)}, {"Unreachable", list(ev.Unreachable)}},
					Tried: "pinged every configured arbiter",
					Todo:  "restore the arbiters' reachability: below threshold.failover this site can no longer arbitrate a failover"})
			}),
		rule([]string{"RoleChanged"}, false, "always: a site becomes active, standby or standalone (keyed by role and epoch, so each change mails once)",
			func(env *events.Envelope, ev events.RoleChanged) []Alert {
				return one(Alert{Key: fmt.Sprintf("%s@%d", ev.To, ev.Epoch), Summary: fmt.Sprintf("site %s is now %s (was %s)", env.Site, ev.To, ev.From),
					Facts: []Fact{{"From", string(ev.From)}, {"To", string(ev.To)}, {"Epoch", fmt.Sprint(ev.Epoch)}, {"Reason", ev.Reason}, {"Failover", ev.FailoverID}}})
			}),
		rule([]string{"FailoverAborted"}, false, "always: a failover stopped before its goal (keyed by step: a takeover retried on every verdict that aborts at the same step mails once per interval)",
			func(env *events.Envelope, ev events.FailoverAborted) []Alert {
				return one(Alert{Key: ev.Step, Summary: fmt.Sprintf("failover %s aborted at step %s", ev.FailoverID, orNone(ev.Step)),
					Facts: []Fact{{"Failover", ev.FailoverID}, {"Step", ev.Step}, {"Reason", ev.Reason}},
					Todo:  "the roles are as they were before the failover's failed step; check the step's error and retry with manualFailover"})
			}),
		rule([]string{KindTakeoverBlocked}, false, "an automatic promotion held back by a guard (block window, lag, wait window, automatic failover off, an aborted attempt), keyed by the guard: a second disaster that does not fail over is mailed, once per interval and guard",
			func(env *events.Envelope, ev events.FailoverDecided) []Alert {
				if !ev.Blocked || ev.Action != events.ActionBeActive || ev.RequestID != "" {
					return nil // a refused request is answered at the operator's terminal
				}
				return one(Alert{Key: ev.Branch, Summary: fmt.Sprintf("site %s held back an automatic takeover: %s", env.Site, ev.Branch),
					Facts: []Fact{{"Guard", ev.Branch}, {"Reason", ev.Reason}},
					Todo:  blockedTodo(ev.Branch)})
			}),
		rule([]string{"FileSyncFailed"}, false, "always: the standby cannot fetch, verify or write the active site's files (keyed by transport)",
			func(env *events.Envelope, ev events.FileSyncFailed) []Alert {
				return one(Alert{Key: ev.Transport, Summary: fmt.Sprintf("site %s cannot fetch files from the active site: %s", env.Site, firstLine(ev.Reason)),
					Facts: []Fact{{"Transport", ev.Transport}, {"File", ev.File}, {"Reason", ev.Reason}},
					Tried: fmt.Sprintf("%d attempt(s)", ev.Attempts),
					Todo:  "the standby's copies of configuration and RRD files are getting old; check the transport (SSH/SCP or the object store link)"})
			}),
		rule([]string{"FileSyncFailed"}, true, "a file-sync run completes after a failure",
			func(env *events.Envelope, ev events.FileSyncCompleted) []Alert {
				return one(Alert{Key: ev.Transport, Summary: fmt.Sprintf("site %s fetches files again (%d files)", env.Site, ev.Files),
					Facts: []Fact{{"Transport", ev.Transport}, {"Files", fmt.Sprint(ev.Files)}, {"Bytes", fmt.Sprint(ev.Bytes)}}})
			}),
		rule([]string{"FailureDetectionFailed"}, false, "always: no verdict could be reached (script failed, bad output, SSH to arbiters impossible)",
			func(env *events.Envelope, ev events.FailureDetectionFailed) []Alert {
				return one(Alert{Key: ev.Method + " " + ev.Script, Summary: fmt.Sprintf("failure detection (%s) failed: %s", ev.Method, firstLine(ev.Reason)),
					Facts: []Fact{{"Method", ev.Method}, {"Script", ev.Script}, {"Reason", ev.Reason}, {"Output", ev.Output}},
					Todo:  "no role changes while failure detection fails; fix the script or the arbiters' SSH access"})
			}),
		rule([]string{"ReplicationBroken"}, false, `repairable=false (drwatch gave up), or check "primary_host" (the MySQL primary's host name is unknown); keyed by database, scope, server, check`,
			func(env *events.Envelope, ev events.ReplicationBroken) []Alert {
				if ev.Repairable && ev.Check != "primary_host" {
					return nil // dbmonitor is still repairing; it mails when it gives up
				}
				sum := fmt.Sprintf("%s replication broken on %s (%s, check %s): %s", dbName(ev.Database), ev.Server, ev.Scope, ev.Check, firstLine(ev.Error))
				if ev.Check == "primary_host" {
					sum = fmt.Sprintf("%s primary host unknown on %s: %s", dbName(ev.Database), ev.Server, firstLine(ev.Error))
				}
				tried := fmt.Sprintf("%d repair attempt(s)", ev.Attempts)
				if !ev.Repairable {
					tried += "; drwatch will not try again"
				}
				return one(Alert{Key: replKey(ev.Database, ev.Scope, ev.Server, ev.Check), Summary: sum,
					Facts: []Fact{{"Database", dbName(ev.Database)}, {"Scope", ev.Scope}, {"Server", ev.Server}, {"Check", ev.Check}, {"Error", ev.Error}, {"Repairable", fmt.Sprint(ev.Repairable)}},
					Tried: tried, Todo: "repair replication by hand; drwatch mails again when the check passes"})
			}),
		rule([]string{"ReplicationBroken"}, true, "the broken check passes again",
			func(env *events.Envelope, ev events.ReplicationRepaired) []Alert {
				return one(Alert{Key: replKey(ev.Database, ev.Scope, ev.Server, ev.Check), Summary: fmt.Sprintf("%s replication on %s repaired (check %s)", dbName(ev.Database), ev.Server, ev.Check),
					Facts: []Fact{{"Database", dbName(ev.Database)}, {"Scope", ev.Scope}, {"Server", ev.Server}, {"Check", ev.Check}, {"Attempts", fmt.Sprint(ev.Attempts)}}})
			}),
		rule([]string{"ReplicationDiverged"}, false, "always: both sides took writes; replication is not resumed automatically",
			func(env *events.Envelope, ev events.ReplicationDiverged) []Alert {
				return one(Alert{Key: string(ev.Database) + " " + ev.Server, Summary: fmt.Sprintf("%s on %s diverged from its primary; not repairable automatically", dbName(ev.Database), ev.Server),
					Facts: []Fact{{"Database", dbName(ev.Database)}, {"Server", ev.Server}, {"Details", strings.Join(ev.Details, "; ")}},
					Tried: "nothing: resuming replication blindly would lose the writes of one side",
					Todo:  "run: " + ev.ResyncCommand})
			}),
		rule([]string{"ReplicationLagHigh"}, false, "always: replication lag above its limit",
			func(env *events.Envelope, ev events.ReplicationLagHigh) []Alert {
				return one(Alert{Key: string(ev.Database) + " " + ev.Server, Summary: fmt.Sprintf("%s replication lag on %s: %.0fs / %d bytes", dbName(ev.Database), ev.Server, ev.LagSeconds, ev.LagBytes),
					Facts: []Fact{{"Lag", fmt.Sprintf("%.1fs, %d bytes", ev.LagSeconds, ev.LagBytes)}, {"Limit", fmt.Sprintf("%.0fs, %d bytes", ev.ThresholdSeconds, ev.ThresholdBytes)}},
					Todo:  "a failover now would lose the lagging writes unless forced"})
			}),
		rule([]string{"ReplicationLagHigh"}, true, "lag back under its limit",
			func(env *events.Envelope, ev events.ReplicationLagRecovered) []Alert {
				return one(Alert{Key: string(ev.Database) + " " + ev.Server, Summary: fmt.Sprintf("%s replication lag on %s back to normal", dbName(ev.Database), ev.Server),
					Facts: []Fact{{"Lag", fmt.Sprintf("%.1fs, %d bytes", ev.LagSeconds, ev.LagBytes)}}})
			}),
		rule([]string{"RemoteUnreachable"}, false, "always: the peer's VIP and load-balancer nodes do not answer on a line (keyed by peer and line)",
			func(env *events.Envelope, ev events.RemoteUnreachable) []Alert {
				var probes []string
				for _, p := range ev.Failed {
					probes = append(probes, fmt.Sprintf("%s %s ×%d: %s", p.Kind, p.Target, p.Attempts, orNone(p.Error)))
				}
				return one(Alert{Key: string(ev.Peer) + " " + ev.Line, Since: ev.Since,
					Summary: fmt.Sprintf("peer site %s unreachable on line %s for %s", ev.Peer, ev.Line, secs(ev.DownForSeconds)),
					Facts:   []Fact{{"Peer", string(ev.Peer)}, {"Line", ev.Line}, {"Down for", secs(ev.DownForSeconds)}},
					Tried:   strings.Join(probes, "\n  "),
					Todo:    "arbitration decides whether the peer is down; check the network between the sites"})
			}),
		rule([]string{"RemoteUnreachable"}, true, "the peer answers again on the line",
			func(env *events.Envelope, ev events.RemoteReachable) []Alert {
				return one(Alert{Key: string(ev.Peer) + " " + ev.Line, Summary: fmt.Sprintf("peer site %s reachable again on line %s (%s answered after %s)", ev.Peer, ev.Line, ev.Target, secs(ev.DownForSeconds))})
			}),
		rule([]string{"MonitorTripped"}, false, "always: a local monitor reached its failure limit (keyed by monitor)",
			func(env *events.Envelope, ev events.MonitorTripped) []Alert {
				return one(Alert{Key: ev.Monitor, Summary: fmt.Sprintf("monitor %s (%s) failed %d times: %s", ev.Monitor, ev.Kind, ev.Failures, firstLine(ev.Detail)),
					Facts: []Fact{{"Monitor", ev.Monitor}, {"Kind", ev.Kind}, {"Failures", fmt.Sprint(ev.Failures)}, {"Detail", ev.Detail}, {"Log only", fmt.Sprint(ev.LogOnly)}}})
			}),
		rule([]string{"MonitorTripped"}, true, "the monitor passes again",
			func(env *events.Envelope, ev events.MonitorRecovered) []Alert {
				return one(Alert{Key: ev.Monitor, Summary: fmt.Sprintf("monitor %s (%s) passes again", ev.Monitor, ev.Kind)})
			}),
		rule([]string{"ConfigCheckFailed"}, false, "the configuration check after a restart found problems",
			func(env *events.Envelope, ev events.ConfigChecked) []Alert {
				if ev.OK {
					return nil
				}
				return one(Alert{Kind: "ConfigCheckFailed", Summary: fmt.Sprintf("DR configuration check failed: %s", strings.Join(ev.Problems, "; ")),
					Facts: []Fact{{"Problems", strings.Join(ev.Problems, "\n  ")}}})
			}),
	}
}

// blockedTodo says what lifts the guard that held a takeover back.
func blockedTodo(branch string) string {
	switch branch {
	case "guard.block-window":
		return "an automatic failover completed within failover.blockWindow; if the pair is sound, `drwatch failover ack` lets the next one happen (or make a site active with `drwatch failover --to SITE`)"
	case "guard.lag":
		return "the standby's replica is behind the lag limits; promoting it loses those writes: `drwatch failover --to SITE --force` if the active site is gone for good"
	case "guard.automatic-off":
		return "automatic failover is off; re-enable it with `drwatch toolkit watchdog status --enable-automatic-failover` or run `drwatch failover --to SITE`"
	case "guard.wait-window":
		return "both sites are standby and the site active last has waitDuration to come back; `drwatch failover --to SITE` ends the wait"
	}
	return "see `drwatch status` for the decision and `drwatch failover --to SITE` to act by hand"
}

// arbitration reads a verdict. Seed 000 mails "automatic failover disabled
// because of connectivity problems between the site and the arbiters" and
// "the site cannot open an SSH connection": the first is a verdict whose
// numbers ask for a role change that automatic failover being off prevents
// (or whose branch/description says so), the second a standby whose SSH
// logins to arbiters failed.
func arbitration(env *events.Envelope, ev events.ArbitrationDecided) []Alert {
	var out []Alert
	facts := []Fact{
		{"Role", string(ev.Role)}, {"Method", ev.Method}, {"Action", string(ev.Action)}, {"Branch", ev.Branch}, {"Description", ev.Description},
		{"Arbiters (N)", fmt.Sprint(ev.N)}, {"Reachable", fmt.Sprintf("%d (%s)", ev.Reachable, pct(ev.ReachableShare))},
		{"Managed by active", fmt.Sprintf("%d (%s)", ev.Managed, pct(ev.ManagedShare))}, {"Unreachable", fmt.Sprintf("%d (%s)", ev.Unreachable, pct(ev.UnreachableShare))},
		{"Thresholds", fmt.Sprintf("failover %s, adjustManaged %s, warning %s", pct(ev.Thresholds.Failover), pct(ev.Thresholds.AdjustManaged), pct(ev.Thresholds.Warning))},
		{"Automatic failover", fmt.Sprint(ev.AutomaticFailover)},
	}
	var probes []string
	var sshFailed []string
	for _, a := range ev.Arbiters {
		state := "reachable"
		if !a.Reachable {
			state = "unreachable"
		}
		if a.ManagedByActive {
			state += ", managed by the active site"
		}
		if a.Error != "" {
			state += ": " + a.Error
			sshFailed = append(sshFailed, a.Host)
		}
		probes = append(probes, a.Host+" "+state)
	}
	tried := strings.Join(probes, "\n  ")
	text := strings.ToLower(ev.Branch + " " + ev.Description)
	wouldMove := false
	if ev.N > 0 && ev.Method == "arbiters" {
		switch ev.Role {
		case events.RoleActive:
			wouldMove = ev.ReachableShare < ev.Thresholds.Failover
		case events.RoleStandby:
			wouldMove = ev.ManagedShare < ev.Thresholds.Failover && 1-ev.UnreachableShare >= ev.Thresholds.AdjustManaged &&
				ev.ManagedShare+ev.UnreachableShare < ev.Thresholds.Failover
		}
	}
	if (wouldMove && !ev.AutomaticFailover) || strings.Contains(text, "disabled") {
		out = append(out, Alert{Kind: KindFailoverDisabledByConnectivity,
			Summary: fmt.Sprintf("automatic failover disabled by connectivity problems: site %s (%s) reaches %d of %d arbiters", env.Site, ev.Role, ev.Reachable, ev.N),
			Facts:   facts, Tried: tried,
			Todo: "the verdict asks for a role change that drwatch does not carry out while automatic failover is off; decide and run manualFailover, or restore connectivity"})
	}
	if ev.N == 0 && ev.Method == "arbiters" {
		out = append(out, Alert{Kind: KindCannotArbitrate, Summary: fmt.Sprintf("site %s cannot arbitrate: no arbiter configured", env.Site),
			Facts: facts, Todo: "configure watchdog.failureDetection.arbiters; until then no automatic failover happens"})
	}
	if ev.Role == events.RoleStandby && ev.Method == "arbiters" && len(sshFailed) > 0 {
		slices.Sort(sshFailed)
		out = append(out, Alert{Kind: KindArbiterSSHFailed, Key: strings.Join(sshFailed, ","),
			Summary: fmt.Sprintf("site %s cannot log in over SSH to %d of %d arbiters: %s", env.Site, len(sshFailed), ev.N, strings.Join(sshFailed, ", ")),
			Facts:   facts, Tried: tried,
			Todo: "unreachable arbiters count as managed by the active site; check SSH access, host keys and credentials"})
	}
	return out
}

// Alerts returns the alerts env raises under table (none for an event no
// rule mails).
func Alerts(table []Rule, env *events.Envelope) ([]Alert, error) {
	var out []Alert
	for _, r := range table {
		if r.Type != env.Type {
			continue
		}
		as, err := r.alerts(env)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// Filters are the subjects of every event type in table published by site.
// Each site mails what its own services report: the peer's events are in
// the site's log too, and mailing them as well would send every mail twice
// while the link is up.
func Filters(table []Rule, site events.SiteID) []string {
	var fs []string
	for _, r := range table {
		f := events.SiteTypeFilter(site, r.Type)
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	return fs
}

// Render builds the subject and plain-text body of a.
func Render(a Alert, interval time.Duration) (subject, body string) {
	subject = fmt.Sprintf("[drwatch %s] %s", a.Site, a.Summary)
	if a.Recovery {
		subject = fmt.Sprintf("[drwatch %s] RECOVERED: %s", a.Site, a.Summary)
	}
	var b strings.Builder
	env := a.Env
	fmt.Fprintf(&b, "%s\n\n", a.Summary)
	facts := []Fact{
		{"Site", fmt.Sprintf("%s (node %s, service %s)", env.Site, env.Node, env.Service)},
		{"Event", fmt.Sprintf("%s %s", env.Type, env.ID)},
		{"Reported at", env.Time.UTC().Format(time.RFC3339)},
		{"Since", a.Since.UTC().Format(time.RFC3339)},
	}
	for _, f := range append(facts, a.Facts...) {
		if f.Value == "" {
			continue
		}
		fmt.Fprintf(&b, "%-19s %s\n", f.Label+":", f.Value)
	}
	if a.Tried != "" {
		fmt.Fprintf(&b, "\nWhat was tried:\n  %s\n", a.Tried)
	}
	if a.Todo != "" {
		fmt.Fprintf(&b, "\nWhat to do:\n  %s\n", a.Todo)
	}
	fmt.Fprintf(&b, "\nCorrelation id: %s\n", env.CorrelationID)
	if a.Recovery {
		b.WriteString("This recovery ends the error's mail window: the next occurrence is mailed at once.\n")
	} else {
		fmt.Fprintf(&b, "drwatch mails this error at most once every %s (watchdog.notification.interval) and again when it clears.\n", interval)
	}
	return subject, b.String()
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func secs(s float64) string { return (time.Duration(s) * time.Second).String() }

func list(xs []string) string { return strings.Join(xs, ", ") }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func dbName(d events.Database) string {
	switch d {
	case events.MySQL:
		return "MySQL"
	case events.PgSQL:
		return "PostgreSQL"
	}
	return string(d)
}

func replKey(d events.Database, scope, server, check string) string {
	return fmt.Sprintf("%s %s %s %s", d, scope, server, check)
}
