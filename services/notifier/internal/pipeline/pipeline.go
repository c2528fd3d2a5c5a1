// Package pipeline is the notifier proper: every event goes through small
// stages — render (the rules table), dedupe (a pure decision over the shared
// store, claimed by compare-and-set), send (SMTP), record (NotificationSent
// or NotificationSuppressed in the log) — and the bus acknowledges it only
// when every stage is done, so nothing is lost.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/notifier/internal/dedupe"
	"github.com/drwatch/drwatch/services/notifier/internal/mail"
	"github.com/drwatch/drwatch/services/notifier/internal/rules"
)

// ErrInFlight asks the bus to redeliver later: another mail of the same
// key is being sent and must be accepted first.
var ErrInFlight = errors.New("another mail of this error is in flight")

// Sender hands a message to the SMTP server.
type Sender interface {
	Send(ctx context.Context, m mail.Message) (mail.Receipt, error)
}

// Recorder stores the notifier's own events in the site's log.
type Recorder interface {
	Source() events.Source
	PublishEnvelope(ctx context.Context, env *events.Envelope) error
}

// Config is what the pipeline needs besides its collaborators.
type Config struct {
	From     string
	To       []string
	Interval time.Duration
	ClaimTTL time.Duration
	Rules    []rules.Rule
}

// Notifier runs the stages for each event.
type Notifier struct {
	cfg   Config
	store dedupe.Store
	send  Sender
	rec   Recorder
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Notifier. now is the clock.
func New(cfg Config, store dedupe.Store, send Sender, rec Recorder, now func() time.Time, log *slog.Logger) *Notifier {
	return &Notifier{cfg: cfg, store: store, send: send, rec: rec, now: now, log: log.With("component", "pipeline")}
}

// Handle is the bus handler: an error makes the bus redeliver the event
// with back-off.
func (n *Notifier) Handle(ctx context.Context, env *events.Envelope) error {
	alerts, err := rules.Alerts(n.cfg.Rules, env)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if err := n.notify(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) notify(ctx context.Context, a rules.Alert) error {
	key := a.DedupeKey()
	subject, body := rules.Render(a, n.cfg.Interval)
	da := dedupe.Alert{Key: key, Recovery: a.Recovery, Cause: a.Env.ID, MessageID: messageID(a), Subject: subject}
	policy := dedupe.Policy{Interval: n.cfg.Interval, ClaimTTL: n.cfg.ClaimTTL}
	for {
		entry, rev, err := n.store.Get(ctx, key)
		if err != nil {
			return err
		}
		now := n.now()
		d := dedupe.Decide(entry, da, now, policy)
		switch d.Action {
		case dedupe.Suppress:
			return n.recordSuppressed(ctx, a, d)
		case dedupe.AlreadySent:
			return n.recordSent(ctx, a, subject, nil)
		case dedupe.Ignore:
			n.log.Debug("no mail", "key", key, "reason", d.Reason)
			return nil
		case dedupe.Wait:
			return fmt.Errorf("%w: %s: %s", ErrInFlight, key, d.Reason)
		}
		// Send: claim first, so a crash or an SMTP outage leaves a record
		// that this event's mail is owed and no other replica sends it.
		claimRev, err := n.store.Put(ctx, key, d.Claim, rev)
		if errors.Is(err, dedupe.ErrConflict) {
			continue // someone else moved first: decide again on what they wrote
		}
		if err != nil {
			return err
		}
		log := n.log.With("key", key, "cause", a.Env.ID, "recovery", a.Recovery)
		log.Info("mailing", "reason", d.Reason, "subject", subject)
		msg := mail.Message{From: n.cfg.From, To: n.cfg.To, Subject: subject, Body: body, MessageID: da.MessageID, Date: now,
			Headers: [][2]string{{"X-Drwatch-Key", key}, {"X-Drwatch-Event", string(a.Env.ID)}, {"X-Drwatch-Site", string(a.Site)}}}
		rc, err := n.send.Send(ctx, msg)
		if err != nil {
			return fmt.Errorf("mail %s: %w", key, err)
		}
		if len(rc.Refused) > 0 {
			log.Warn("the SMTP server refused some recipients; mailed the others", "refused", rc.Refused)
		}
		n.markDone(ctx, log, key, d.Done, claimRev)
		return n.recordSent(ctx, a, subject, rc.Refused)
	}
}

// markDone stores the outcome of an accepted mail. Failing here would make
// a redelivery mail again, so it retries for a while before giving up (the
// residual window for a duplicate, with the same Message-ID).
func (n *Notifier) markDone(ctx context.Context, log *slog.Logger, key string, done dedupe.Entry, rev uint64) {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := n.store.Put(ctx, key, done, rev)
		if err == nil {
			return
		}
		if errors.Is(err, dedupe.ErrConflict) {
			e, r, gerr := n.store.Get(ctx, key)
			if gerr == nil && (e == nil || e.Cause != done.Cause || e.State != dedupe.Sending) {
				log.Warn("mail sent but its claim was taken over meanwhile; keeping the newer entry", "entry", e)
				return
			}
			if gerr == nil {
				rev = r
				continue
			}
			err = gerr
		}
		if attempt == 10 || ctx.Err() != nil {
			log.Error("mail sent but not recorded; a redelivery may send it again (same Message-ID)", "err", err)
			return
		}
		log.Warn("recording a sent mail failed; retrying", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (n *Notifier) recordSent(ctx context.Context, a rules.Alert, subject string, refused []string) error {
	ev := events.NotificationSent{Key: clip(a.DedupeKey(), 512), Kind: a.Kind, Recipients: n.cfg.To, Subject: clip(subject, 512), Recovery: a.Recovery, Cause: a.Env.ID}
	for _, r := range refused[:min(len(refused), 64)] {
		ev.Refused = append(ev.Refused, clip(r, 600))
	}
	return n.record(ctx, "sent", a, ev)
}

func (n *Notifier) recordSuppressed(ctx context.Context, a rules.Alert, d dedupe.Decision) error {
	ev := events.NotificationSuppressed{Key: clip(a.DedupeKey(), 512), Kind: a.Kind, Reason: clip(d.Reason, 512), Until: d.Until, Cause: a.Env.ID}
	return n.record(ctx, "suppressed", a, ev)
}

// record publishes ev with an id derived from the cause and the key, so a
// redelivered event records it once (the stream drops the duplicate).
func (n *Notifier) record(ctx context.Context, what string, a rules.Alert, ev events.Event) error {
	env, err := events.New(n.rec.Source(), ev, n.now(), a.Env)
	if err != nil {
		return fmt.Errorf("record %s: %w", what, err)
	}
	env.ID = events.ID(what[:4] + "-" + digest(string(a.Env.ID), a.DedupeKey(), what)[:48])
	if err := n.rec.PublishEnvelope(ctx, env); err != nil {
		return fmt.Errorf("record %s: %w", what, err)
	}
	return nil
}

// messageID is stable for one (event, key): a mail sent twice in the
// residual window carries the same Message-ID.
func messageID(a rules.Alert) string {
	return fmt.Sprintf("<%s@drwatch.%s>", digest(string(a.Env.ID), a.DedupeKey())[:40], a.Site)
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
