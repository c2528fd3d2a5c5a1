// Package dedupe decides whether a notification is mailed or suppressed, and
// keeps the per-error state that decision needs in a Store shared by every
// replica of the notifier (memory for tests and benchmarks, JetStream KV in
// production).
package dedupe

import (
	"fmt"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// State is where an error's notification stands.
type State string

// The states of an Entry.
const (
	// Sending: a replica claimed the mail and is handing it to the SMTP
	// server. Written before DATA so a crash or an outage never loses the
	// mail and a second replica never sends it too.
	Sending State = "sending"
	// Sent: the error mail was accepted; the window runs until Until.
	Sent State = "sent"
	// Cleared: a recovery mail was accepted; the next error mails at once.
	Cleared State = "cleared"
)

// Entry is the stored state of one error key.
type Entry struct {
	// Key is the readable dedupe key (site/kind/key).
	Key   string `json:"key"`
	State State  `json:"state"`
	// Recovery: the mail in flight (Sending) or last sent is a recovery.
	Recovery bool `json:"recovery"`
	// Cause is the event whose mail is in flight or was sent last.
	Cause     events.ID `json:"cause"`
	MessageID string    `json:"messageId"`
	Subject   string    `json:"subject"`
	ClaimedAt time.Time `json:"claimedAt"`
	// SentAt is when the last mail (error or recovery) was accepted.
	SentAt time.Time `json:"sentAt"`
	// Until ends the window of the last error mail.
	Until time.Time `json:"until"`
}

// Alert is what the dedupe needs to know of one notification.
type Alert struct {
	Key       string
	Recovery  bool
	Cause     events.ID
	MessageID string
	Subject   string
}

// Action is what Decide asks of the pipeline.
type Action int

// The actions.
const (
	// Send: claim the key with Decision.Claim (compare-and-set), mail, then
	// store Decision.Done.
	Send Action = iota + 1
	// Suppress: record NotificationSuppressed with Decision.Reason.
	Suppress
	// AlreadySent: this very event was mailed before (a redelivery after
	// the mail was recorded); record NotificationSent again, mail nothing.
	AlreadySent
	// Wait: another mail of this key is in flight and must be accepted
	// first (a recovery never overtakes its error); retry later.
	Wait
	// Ignore: a recovery with no error mail to answer. Nothing is mailed
	// and nothing recorded: a sync or repair that succeeds every round must
	// not fill the log with suppressions of mails that were never owed.
	Ignore
)

func (a Action) String() string {
	switch a {
	case Send:
		return "send"
	case Suppress:
		return "suppress"
	case AlreadySent:
		return "already-sent"
	case Wait:
		return "wait"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Policy holds the timings of the decision.
type Policy struct {
	// Interval is watchdog.notification.interval: one mail per error per
	// interval.
	Interval time.Duration
	// ClaimTTL is how long a Sending claim of another event is honoured
	// without being refreshed; past it the claimer is taken as gone (its
	// event was parked or its consumer deleted) and the claim is taken
	// over. It must exceed the longest retry back-off plus the ack wait.
	ClaimTTL time.Duration
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	Reason string
	// Until is when the suppressing window ends (Suppress).
	Until time.Time
	// Claim is stored before mailing and Done after (Send).
	Claim, Done Entry
}

// Decide is the dedupe: a pure function of the stored entry (nil when the
// key was never seen), the alert and the time.
func Decide(e *Entry, a Alert, now time.Time, p Policy) Decision {
	send := func(reason string) Decision {
		d := Decision{Action: Send, Reason: reason}
		d.Claim = Entry{Key: a.Key, State: Sending, Recovery: a.Recovery, Cause: a.Cause, MessageID: a.MessageID, Subject: a.Subject, ClaimedAt: now}
		if e != nil {
			d.Claim.SentAt, d.Claim.Until = e.SentAt, e.Until
		}
		d.Done = d.Claim
		d.Done.SentAt = now
		if a.Recovery {
			// A recovery resets the window: the next error mails at once.
			d.Done.State, d.Done.Until = Cleared, now
		} else {
			d.Done.State, d.Done.Until = Sent, now.Add(p.Interval)
		}
		return d
	}
	suppress := func(until time.Time, format string, args ...any) Decision {
		return Decision{Action: Suppress, Until: until, Reason: fmt.Sprintf(format, args...)}
	}
	if e == nil {
		if a.Recovery {
			return Decision{Action: Ignore, Reason: "nothing to recover: no error mail on record for " + a.Key}
		}
		return send("first occurrence")
	}
	if e.State == Sending {
		switch {
		case e.Cause == a.Cause:
			return send("resuming a mail claimed but not recorded as sent (retry after an SMTP error or a crash)")
		case now.Sub(e.ClaimedAt) > p.ClaimTTL:
			return send(fmt.Sprintf("taking over a claim by event %s left unrefreshed since %s", e.Cause, e.ClaimedAt.Format(time.RFC3339)))
		case e.Recovery == a.Recovery:
			return suppress(e.ClaimedAt.Add(p.Interval), "the same %s is being mailed (event %s, claimed %s)", kindWord(a.Recovery), e.Cause, e.ClaimedAt.Format(time.RFC3339))
		default:
			return Decision{Action: Wait, Reason: fmt.Sprintf("the %s mail of event %s is still in flight", kindWord(e.Recovery), e.Cause)}
		}
	}
	if e.Cause == a.Cause {
		return Decision{Action: AlreadySent, Reason: fmt.Sprintf("event %s was mailed at %s", a.Cause, e.SentAt.Format(time.RFC3339))}
	}
	switch {
	case a.Recovery && e.State == Sent:
		return send("the error mailed at " + e.SentAt.Format(time.RFC3339) + " cleared")
	case a.Recovery:
		return Decision{Action: Ignore, Reason: fmt.Sprintf("already recovered: recovery mailed at %s (event %s)", e.SentAt.Format(time.RFC3339), e.Cause)}
	case e.State == Cleared:
		return send("the error came back after its recovery at " + e.SentAt.Format(time.RFC3339))
	case now.Before(e.Until):
		return suppress(e.Until, "mailed at %s (event %s); the same error is not mailed again before %s (watchdog.notification.interval %s)",
			e.SentAt.Format(time.RFC3339), e.Cause, e.Until.Format(time.RFC3339), p.Interval)
	default:
		return send("the window of the mail sent at " + e.SentAt.Format(time.RFC3339) + " has passed")
	}
}

func kindWord(recovery bool) string {
	if recovery {
		return "recovery"
	}
	return "error"
}
