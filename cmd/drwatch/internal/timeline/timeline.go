// Package timeline selects the events of one incident from a log and
// renders them as a timeline, as text and as a self-contained HTML page.
// It also gives every event type a one-line description for humans.
package timeline

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Record is one event with its stream sequence.
type Record struct {
	Seq uint64
	Env *events.Envelope
}

// Entry is one line of a timeline.
type Entry struct {
	Seq     uint64
	Time    time.Time
	Offset  time.Duration
	Site    events.SiteID
	Service string
	Type    events.Type
	ID      events.ID
	Summary string
	// Failed marks an event reporting a failure (a failed step, an abort).
	Failed bool
}

// Step is one planned step of a failover saga and what became of it.
type Step struct {
	Name string
	// Status is done, failed or not reached.
	Status   string
	Duration time.Duration
	Detail   string
}

// Timeline is one incident.
type Timeline struct {
	Title   string
	Entries []Entry
	// Steps is the plan of the failover saga in the incident, if any.
	Steps []Step
	// Outcome is how the saga ended: completed, aborted or running.
	Outcome string
}

// Selector names an incident: a correlation id, a failover id, or both.
type Selector struct {
	Correlation events.CorrelationID
	Failover    string
}

// Select keeps the records of the incident named by sel, in log order.
// An incident is closed over its links: the events of a failover id, every
// event sharing a correlation id with them, and the request a saga answers.
func Select(recs []Record, sel Selector) []Record {
	corr := map[events.CorrelationID]bool{}
	fails := map[string]bool{}
	ids := map[events.ID]bool{}
	if sel.Correlation != "" {
		corr[sel.Correlation] = true
	}
	if sel.Failover != "" {
		fails[sel.Failover] = true
	}
	in := make([]bool, len(recs))
	for changed := true; changed; {
		changed = false
		for i, r := range recs {
			if in[i] {
				continue
			}
			fid, reqID := links(r.Env)
			if corr[r.Env.CorrelationID] || (fid != "" && fails[fid]) || ids[r.Env.ID] {
				in[i], changed = true, true
				corr[r.Env.CorrelationID] = true
				if fid != "" {
					fails[fid] = true
				}
				if reqID != "" {
					ids[reqID] = true
				}
			}
		}
	}
	var out []Record
	for i, r := range recs {
		if in[i] {
			out = append(out, r)
		}
	}
	return out
}

// links reads the failover id and the answered request id of a payload,
// whatever its type: they are the threads that tie an incident together.
func links(env *events.Envelope) (failoverID string, requestID events.ID) {
	var p struct {
		FailoverID string    `json:"failoverId"`
		RequestID  events.ID `json:"requestId"`
	}
	_ = json.Unmarshal(env.Payload, &p)
	return p.FailoverID, p.RequestID
}

// Build turns the records of one incident into a timeline.
func Build(title string, recs []Record) Timeline {
	tl := Timeline{Title: title}
	if len(recs) == 0 {
		return tl
	}
	start := recs[0].Env.Time
	stepAt := map[string]int{}
	for _, r := range recs {
		env := r.Env
		ev, err := events.Decode(env)
		e := Entry{Seq: r.Seq, Time: env.Time, Offset: env.Time.Sub(start), Site: env.Site, Service: env.Service, Type: env.Type, ID: env.ID}
		if err != nil {
			e.Summary = "undecodable: " + err.Error()
		} else {
			e.Summary, e.Failed = Describe(ev)
		}
		tl.Entries = append(tl.Entries, e)
		switch v := ev.(type) {
		case events.FailoverStarted:
			tl.Steps, tl.Outcome = nil, "running"
			for i, s := range v.Steps {
				stepAt[s] = i
				tl.Steps = append(tl.Steps, Step{Name: s, Status: "not reached"})
			}
		case events.FailoverStepDone:
			i, ok := stepAt[v.Step]
			if !ok {
				stepAt[v.Step] = len(tl.Steps)
				i = len(tl.Steps)
				tl.Steps = append(tl.Steps, Step{Name: v.Step})
			}
			st := &tl.Steps[i]
			st.Duration = time.Duration(v.DurationSeconds * float64(time.Second))
			st.Status, st.Detail = "done", v.Output
			if !v.OK {
				st.Status, st.Detail = "failed", v.Error
			}
		case events.FailoverCompleted:
			tl.Outcome = "completed"
		case events.FailoverAborted:
			tl.Outcome = "aborted: " + v.Reason
		}
	}
	return tl
}

// Describe says in one line what an event reports, and whether it is a
// failure.
func Describe(ev events.Event) (string, bool) {
	switch e := ev.(type) {
	case events.FailoverRequested:
		return fmt.Sprintf("%s asks site %s to become %s%s%s: %s", e.RequestedBy, e.Target, e.ToRole, flag(e.Manual, " (manual)"), flag(e.Force, " (force)"), e.Reason), false
	case events.FailoverStarted:
		return fmt.Sprintf("failover %s started %s→%s epoch %d%s: %s; plan %s", e.FailoverID, e.From, e.To, e.Epoch, flag(e.Manual, " (manual)"), e.Reason, strings.Join(e.Steps, ", ")), false
	case events.FailoverStepDone:
		if !e.OK {
			return fmt.Sprintf("step %s FAILED after %.1fs: %s", e.Step, e.DurationSeconds, e.Error), true
		}
		return fmt.Sprintf("step %s done in %.1fs", e.Step, e.DurationSeconds), false
	case events.FailoverCompleted:
		return fmt.Sprintf("failover %s completed: %s at epoch %d in %.1fs", e.FailoverID, e.Role, e.Epoch, e.DurationSeconds), false
	case events.FailoverAborted:
		return fmt.Sprintf("failover %s ABORTED at %s: %s", e.FailoverID, orDash(e.Step), e.Reason), true
	case events.FailoverDecided:
		return fmt.Sprintf("decided %s (%s)%s%s%s: %s", e.Action, e.Branch, flag(e.Blocked, " BLOCKED"), flag(e.Paused, " paused"), flag(e.ObserveOnly, " observe-only"), e.Reason), e.Blocked
	case events.RoleChanged:
		return fmt.Sprintf("role %s→%s epoch %d: %s", e.From, e.To, e.Epoch, e.Reason), false
	case events.AutomaticFailoverChanged:
		s := "automatic failover enabled"
		if !e.Enabled {
			s = "automatic failover disabled until enabled"
			if e.Until != nil {
				s = "automatic failover disabled until " + e.Until.UTC().Format(time.RFC3339)
			}
		}
		return s + " by " + e.By + ": " + e.Reason, false
	case events.FailoverAcknowledged:
		return "failover acknowledged by " + e.By + ": " + e.Reason, false
	case events.MaintenanceChanged:
		s := "maintenance " + e.Mode
		if e.Mode == events.MaintenanceOff {
			s = "maintenance over"
		} else if e.Until != nil {
			s += " until " + e.Until.UTC().Format(time.RFC3339)
		}
		return s + " by " + e.By + ": " + e.Reason, false
	case events.RemoteUnreachable:
		return fmt.Sprintf("peer %s unreachable on line %s for %.0fs", e.Peer, e.Line, e.DownForSeconds), true
	case events.RemoteReachable:
		return fmt.Sprintf("peer %s answers on line %s (%s) after %.0fs", e.Peer, e.Line, e.Target, e.DownForSeconds), false
	case events.PeerVIPMovedLocally:
		return fmt.Sprintf("peer %s VIP %s moved locally; %s answer", e.Peer, e.VIP, strings.Join(e.AnsweringNodes, ",")), false
	case events.ArbitrationDecided:
		return fmt.Sprintf("%s verdict %s (%s): N=%d reachable=%d managed=%d unreachable=%d", e.Method, e.Action, e.Branch, e.N, e.Reachable, e.Managed, e.Unreachable), false
	case events.ArbiterQuorumLow:
		return fmt.Sprintf("only %d/%d arbiters reachable (warning %.2f)", e.Reachable, e.N, e.Warning), true
	case events.FailureDetectionFailed:
		return "failure detection failed: " + e.Reason, true
	case events.ArbitersClaimRequested:
		return "claim of the arbiters asked: " + e.Reason, false
	case events.ArbitersClaimed:
		return fmt.Sprintf("arbiters claim %s: held %d/%d, managed by the peer %d, unreachable %d, %d look(s) in %.2fs", e.Outcome, e.Held, e.N, e.Managed, e.Unreachable, e.Looks, e.DurationSeconds), e.Outcome != events.ClaimClear
	case events.ReplicationBroken:
		return fmt.Sprintf("%s replication broken on %s: %s: %s", e.Database, e.Server, e.Check, e.Error), true
	case events.ReplicationRepaired:
		return fmt.Sprintf("%s replication repaired on %s (%s)", e.Database, e.Server, e.Check), false
	case events.ReplicationLagHigh:
		return fmt.Sprintf("%s lag %.0fs / %d bytes on %s", e.Database, e.LagSeconds, e.LagBytes, e.Server), true
	case events.ReplicationLagRecovered:
		return fmt.Sprintf("%s lag back to %.0fs on %s", e.Database, e.LagSeconds, e.Server), false
	case events.ReplicationDiverged:
		return fmt.Sprintf("%s DIVERGED on %s: %s", e.Database, e.Server, strings.Join(e.Details, "; ")), true
	case events.DatabaseCommand:
		return fmt.Sprintf("ask %s on site %s to %s", e.Database, e.Target, e.Command), false
	case events.DatabaseCommandDone:
		if !e.OK {
			return fmt.Sprintf("%s %s FAILED: %s", e.Database, e.Command, e.Error), true
		}
		line := fmt.Sprintf("%s %s done at %s", e.Database, e.Command, orDash(e.Position))
		if e.FollowsNone {
			line += ", follows no primary"
		}
		return line, false
	case events.FileSyncCompleted:
		return fmt.Sprintf("file sync copied %d files (%d bytes) over %s", e.Files, e.Bytes, e.Transport), false
	case events.FileSyncFailed:
		return fmt.Sprintf("file sync failed on %s: %s", e.File, e.Reason), true
	case events.MonitorTripped:
		return fmt.Sprintf("%s monitor %s tripped after %d failures: %s", e.Kind, e.Monitor, e.Failures, e.Detail), !e.LogOnly
	case events.MonitorRecovered:
		return fmt.Sprintf("%s monitor %s recovered", e.Kind, e.Monitor), false
	case events.ConfigChecked:
		if !e.OK {
			return "config check failed: " + strings.Join(e.Problems, "; "), true
		}
		return "config check passed", false
	case events.ConfigUpdated:
		return fmt.Sprintf("config %s updated by %s; changed: %s", e.Path, e.By, orDash(strings.Join(e.Changed, ","))), false
	case events.NotificationSent:
		if len(e.Refused) > 0 {
			return fmt.Sprintf("mailed %s: %s (the SMTP server refused %s)", strings.Join(e.Recipients, ","), e.Subject, strings.Join(e.Refused, "; ")), true
		}
		return fmt.Sprintf("mailed %s: %s", strings.Join(e.Recipients, ","), e.Subject), false
	case events.NotificationSuppressed:
		return fmt.Sprintf("mail %s suppressed: %s", e.Kind, e.Reason), false
	}
	data, _ := json.Marshal(ev)
	return string(data), false
}

func flag(on bool, s string) string {
	if on {
		return s
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
