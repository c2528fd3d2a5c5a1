package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/checker"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/tests/e2e/internal/secrets"
)

// logEvent is an event as stored in a site's EVENTS stream.
type logEvent struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Site    string          `json:"site"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload"`
	Subject string          `json:"-"`
}

// connect logs in to a site's NATS from the host as the site's operator
// (the cli identity, with its key from the suite's secrets): the server
// admits no one else.
func (p *Pair) connect(site string, opts ...nats.Option) (*nats.Conn, error) {
	auth, err := bus.ClientAuth(filepath.Join(p.dir, "secrets", secrets.NATSKeys(site)), bus.IdentityCLI)
	if err != nil {
		return nil, fmt.Errorf("site %s NATS: %w", site, err)
	}
	nc, err := nats.Connect("nats://"+p.Sites[site].Addrs.wan+":4222", append([]nats.Option{auth, nats.Timeout(3 * time.Second)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("site %s NATS: %w", site, err)
	}
	return nc, nil
}

// ReadLog reads a site's whole EVENTS stream (its own events and the copy
// of its peer's) over the site's NATS, from the host. It returns nil when
// the site is not reachable.
func (p *Pair) ReadLog(t *testing.T, site string) ([]logEvent, error) {
	t.Helper()
	nc, err := p.connect(site, nats.MaxReconnects(0))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return nil, fmt.Errorf("site %s EVENTS: %w", site, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	var out []logEvent
	if last == 0 {
		return out, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return out, fmt.Errorf("site %s EVENTS at %d of %d: %w", site, len(out), last, err)
		}
		var ev logEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			return out, fmt.Errorf("site %s: undecodable event on %s: %w", site, msg.Subject(), err)
		}
		ev.Subject = msg.Subject()
		out = append(out, ev)
		md, _ := msg.Metadata()
		if md != nil && md.Sequence.Stream >= last {
			return out, nil
		}
	}
}

// RoleChanges are the RoleChanged events a site logged itself.
func RoleChanges(site string, evs []logEvent) []checker.RoleChange {
	var out []checker.RoleChange
	for _, ev := range evs {
		if ev.Type != "RoleChanged" || ev.Site != site {
			continue
		}
		var pl struct {
			From, To string
			Epoch    uint64
		}
		json.Unmarshal(ev.Payload, &pl)
		out = append(out, checker.RoleChange{Site: site, At: ev.Time, From: pl.From, To: pl.To, Epoch: pl.Epoch})
	}
	return out
}

// Role is a site's current role as its own log says, "" before any
// RoleChanged (the configured initial role holds then).
func (p *Pair) Role(t *testing.T, site string) (string, uint64, error) {
	evs, err := p.ReadLog(t, site)
	if err != nil {
		return "", 0, err
	}
	rc := RoleChanges(site, evs)
	if len(rc) == 0 {
		return "", 0, nil
	}
	return rc[len(rc)-1].To, rc[len(rc)-1].Epoch, nil
}

// FirstEvent returns the time of the first event of type typ logged by
// site after since, or the zero time.
func FirstEvent(evs []logEvent, site, typ string, since time.Time) time.Time {
	for _, ev := range evs {
		if ev.Site == site && ev.Type == typ && !ev.Time.Before(since) {
			return ev.Time
		}
	}
	return time.Time{}
}

// Types lists the event types in evs, for failure messages.
func Types(evs []logEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %s.%s; ", ev.Time.Format("15:04:05.000"), ev.Site, ev.Type)
	}
	return b.String()
}

// Logs reads both sites' logs; a site that is down yields nil.
func (p *Pair) Logs(t *testing.T) map[string][]logEvent {
	t.Helper()
	out := map[string][]logEvent{}
	for _, s := range []string{"a", "b"} {
		evs, err := p.ReadLog(t, s)
		if err != nil {
			t.Logf("site %s's log: %v", s, err)
		}
		out[s] = evs
	}
	return out
}

// AllRoleChanges gathers every site's RoleChanged events from both logs
// (a site's own log, or the peer's copy of it when it is down), each once.
func AllRoleChanges(logs map[string][]logEvent) []checker.RoleChange {
	seen := map[string]bool{}
	var out []checker.RoleChange
	for _, site := range []string{"a", "b"} {
		for _, from := range []string{"a", "b"} {
			for _, ev := range logs[from] {
				if ev.Type != "RoleChanged" || ev.Site != site || seen[ev.ID] {
					continue
				}
				seen[ev.ID] = true
				out = append(out, RoleChanges(site, []logEvent{ev})...)
			}
		}
	}
	return out
}

// assertNeverTwoActive checks, from both logs, the downs the test caused
// and the VIP samples, that no two sites were ever active at once.
func assertNeverTwoActive(t *testing.T, logs map[string][]logEvent, downs []checker.Down, samples []checker.VIPSample) {
	t.Helper()
	ivs := checker.ActiveIntervals("", time.Time{}, AllRoleChanges(logs), downs)
	for _, bad := range checker.NeverTwoActive(ivs, samples) {
		t.Errorf("two actives: %s", bad)
	}
	t.Logf("active spans: %+v (%d VIP samples)", ivs, len(samples))
}

// LastEvent returns the last event of type typ logged by site, or nil.
func LastEvent(evs []logEvent, site, typ string) *logEvent {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Site == site && evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

// Count counts the events of type typ logged by site after since.
func Count(evs []logEvent, site, typ string, since time.Time) int {
	n := 0
	for _, ev := range evs {
		if ev.Site == site && ev.Type == typ && !ev.Time.Before(since) {
			n++
		}
	}
	return n
}

// Publish records ev in a site's log as the site's operator (the cli
// identity, which `drwatch db` also publishes as) would.
func (p *Pair) Publish(t *testing.T, site string, ev events.Event) *events.Envelope {
	t.Helper()
	nc, err := p.connect(site)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := bus.New(nc, bus.Options{Source: events.Source{Site: events.SiteID(site), Node: "e2e", Service: bus.IdentityCLI}, Peer: events.SiteID(peerOf(site))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env, err := b.Publish(ctx, ev, nil)
	if err != nil {
		t.Fatalf("site %s: publish %s: %v", site, ev.EventType(), err)
	}
	return env
}

// takeover is what one site's log says about a failure it handled: when it
// found the peer unreachable, when it decided, when it became active, and
// the saga's steps in between with their durations (where the time went).
type takeover struct {
	detected, decided, active time.Time
	steps                     []string
}

// readTakeover reads site's takeover from evs, looking only at what it
// logged at or after from. The decision is the saga's FailoverStarted, or
// the first beActive verdict when no saga started.
func readTakeover(evs []logEvent, site string, from time.Time) takeover {
	k := takeover{
		detected: FirstEvent(evs, site, "RemoteUnreachable", from),
		decided:  FirstEvent(evs, site, "FailoverStarted", from),
	}
	for _, ev := range evs {
		if !k.decided.IsZero() {
			break
		}
		if ev.Site == site && ev.Type == "ArbitrationDecided" && !ev.Time.Before(from) && verdictOf(ev).Action == events.ActionBeActive {
			k.decided = ev.Time
		}
	}
	for _, rc := range RoleChanges(site, evs) {
		if rc.To == "active" && !rc.At.Before(from) {
			k.active = rc.At
			break
		}
	}
	for _, ev := range evs {
		if ev.Site != site || ev.Type != "FailoverStepDone" || ev.Time.Before(k.decided) || ev.Time.After(k.active) {
			continue
		}
		var st events.FailoverStepDone
		json.Unmarshal(ev.Payload, &st)
		k.steps = append(k.steps, fmt.Sprintf("%s %s", st.Step, (time.Duration(st.DurationSeconds*float64(time.Second))).Round(10*time.Millisecond)))
	}
	return k
}

// figures are the takeover's two figures of the issue, detection counted
// from the fault.
func (k takeover) figures(fault time.Time) string {
	out := fmt.Sprintf("detection %s, decision→active %s", since(k.detected, fault), since(k.active, k.decided))
	if len(k.steps) > 0 {
		out += " (" + strings.Join(k.steps, ", ") + ")"
	}
	return out
}

// verdictOf decodes an ArbitrationDecided; a payload that does not decode
// yields the zero verdict.
func verdictOf(ev logEvent) events.ArbitrationDecided {
	var v events.ArbitrationDecided
	json.Unmarshal(ev.Payload, &v)
	return v
}

// verdicts summarises site's arbitration verdicts at or after from: how
// many, and each branch taken with its count.
func verdicts(evs []logEvent, site string, from time.Time) string {
	n := 0
	var branches []string
	count := map[string]int{}
	for _, ev := range evs {
		if ev.Site != site || ev.Type != "ArbitrationDecided" || ev.Time.Before(from) {
			continue
		}
		n++
		b := verdictOf(ev).Branch
		if count[b] == 0 {
			branches = append(branches, b)
		}
		count[b]++
	}
	var parts []string
	for _, b := range branches {
		parts = append(parts, fmt.Sprintf("%s ×%d", b, count[b]))
	}
	return fmt.Sprintf("%d verdicts (%s)", n, strings.Join(parts, ", "))
}

// logFigures logs a scenario's measurements as the one line
// deployments/README.md's figures are read from.
func logFigures(t *testing.T, scenario string, tm Timers, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES scenario %s (%s timers): %s", scenario, tm.Name(), fmt.Sprintf(format, args...))
}

// since is the time from one logged instant to another, "n/a" when either
// is missing.
func since(t, from time.Time) string {
	if t.IsZero() || from.IsZero() {
		return "n/a"
	}
	return t.Sub(from).Round(10 * time.Millisecond).String()
}
