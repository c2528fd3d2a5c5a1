package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Outcomes of a history entry.
const (
	OutcomeRunning   = "running"
	OutcomeCompleted = "completed"
	OutcomeAborted   = "aborted"
)

// Entry is one move of the active role (`drwatch history`, as patronictl
// history lists timeline changes): a promotion saga of either site, or a
// demotion nobody's promotion asked for (an operator's -s, a self-fence, a
// restart stand-down). The peer's demotion that a promotion fenced is part
// of the promotion's line.
type Entry struct {
	ID string `json:"id"`
	// Site ran the saga.
	Site events.SiteID `json:"site"`
	// From is the site that was active before ("" when none was);
	// To the site active after ("" for a demotion).
	From  events.SiteID `json:"from"`
	To    events.SiteID `json:"to"`
	Epoch events.Epoch  `json:"epoch"`
	// Kind: automatic, manual, forced or stand-down.
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	Start  time.Time `json:"start"`
	// End is when it completed or aborted (zero while running).
	End      time.Time `json:"end,omitzero"`
	Duration float64   `json:"durationSeconds"`
	Outcome  string    `json:"outcome"`
	// Step and Error: where and why an aborted one stopped.
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
	// AtRisk is each database's lag as the promotion's position check
	// (check-position) measured it: what a promotion without it would
	// have lost, in the database's unit.
	AtRisk map[events.Database]string `json:"atRisk,omitempty"`
}

// history folds the log's sagas into entries, in start order.
type history struct {
	entries []*Entry
	byID    map[string]*Entry
	// active is the site last announced active, for an entry's From.
	active events.SiteID
}

func (h *history) apply(env *events.Envelope, ev events.Event) {
	if h.byID == nil {
		h.byID = map[string]*Entry{}
	}
	switch e := ev.(type) {
	case events.FailoverStarted:
		if e.To != events.RoleActive && !e.Manual && e.RequestID != "" && !e.StandDown {
			return // a fence asked by the peer's promotion: part of its line
		}
		en := &Entry{ID: e.FailoverID, Site: env.Site, Epoch: e.Epoch, Reason: e.Reason, Start: env.Time, Outcome: OutcomeRunning}
		switch {
		case e.StandDown:
			en.Kind = "stand-down"
		case e.Force:
			en.Kind = "forced"
		case e.Manual:
			en.Kind = "manual"
		default:
			en.Kind = "automatic"
		}
		if e.To == events.RoleActive {
			en.To = env.Site
			if h.active != env.Site {
				en.From = h.active
			}
		} else {
			en.From = env.Site
		}
		h.entries = append(h.entries, en)
		h.byID[e.FailoverID] = en
	case events.FailoverCompleted:
		if en := h.byID[e.FailoverID]; en != nil && en.Site == env.Site {
			en.Outcome, en.End, en.Duration = OutcomeCompleted, env.Time, e.DurationSeconds
		}
	case events.FailoverAborted:
		if en := h.byID[e.FailoverID]; en != nil && en.Site == env.Site {
			en.Outcome, en.End, en.Step, en.Error = OutcomeAborted, env.Time, e.Step, e.Reason
			en.Duration = env.Time.Sub(en.Start).Seconds()
		}
	case events.DatabaseCommandDone:
		if en := h.byID[e.FailoverID]; en != nil && en.Site == env.Site && e.Command == "position" && e.OK {
			if en.AtRisk == nil {
				en.AtRisk = map[events.Database]string{}
			}
			switch e.Database {
			case events.MySQL:
				en.AtRisk[e.Database] = fmt.Sprintf("%d transactions", e.LagTransactions)
			default:
				en.AtRisk[e.Database] = fmt.Sprintf("%d bytes", e.LagBytes)
			}
		}
	case events.RoleChanged:
		switch {
		case e.To == events.RoleActive:
			h.active = env.Site
		case h.active == env.Site:
			h.active = ""
		}
	}
}

// History returns the role moves the log holds, oldest first.
func (p *Projection) History() []Entry {
	out := make([]Entry, 0, len(p.history.entries))
	for _, e := range p.history.entries {
		out = append(out, *e)
	}
	return out
}

// WriteHistory prints one line per entry.
func WriteHistory(w io.Writer, entries []Entry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tMOVE\tEPOCH\tKIND\tDURATION\tOUTCOME\tAT RISK\tWHY\tFAILOVER")
	for _, e := range entries {
		outcome := e.Outcome
		if e.Outcome == OutcomeAborted {
			outcome += " at " + orDash(e.Step, "-") + ": " + oneLine(e.Error)
		}
		dur := "-"
		if e.Outcome != OutcomeRunning {
			dur = (time.Duration(e.Duration * float64(time.Second))).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s→%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Start.UTC().Format(time.RFC3339), orDash(string(e.From), "none"), orDash(string(e.To), "none"),
			e.Epoch, e.Kind, dur, outcome, atRisk(e.AtRisk), oneLine(e.Reason), e.ID)
	}
	_ = tw.Flush()
}

func atRisk(m map[events.Database]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, db := range []events.Database{events.MySQL, events.PgSQL} {
		if v, ok := m[db]; ok {
			parts = append(parts, string(db)+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
