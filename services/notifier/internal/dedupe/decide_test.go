package dedupe

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := Policy{Interval: time.Hour, ClaimTTL: 10 * time.Minute}
	errA := Alert{Key: "a/ReplicationBroken/x", Cause: "e1", MessageID: "<m1>", Subject: "s1"}
	errB := Alert{Key: "a/ReplicationBroken/x", Cause: "e2", MessageID: "<m2>", Subject: "s2"}
	rec := Alert{Key: "a/ReplicationBroken/x", Cause: "r1", MessageID: "<m3>", Subject: "s3", Recovery: true}
	sent := &Entry{Key: errA.Key, State: Sent, Cause: "e1", SentAt: t0, Until: t0.Add(time.Hour)}
	sending := &Entry{Key: errA.Key, State: Sending, Cause: "e1", ClaimedAt: t0}
	recSending := &Entry{Key: errA.Key, State: Sending, Recovery: true, Cause: "r1", ClaimedAt: t0, SentAt: t0.Add(-time.Hour), Until: t0}
	cleared := &Entry{Key: errA.Key, State: Cleared, Recovery: true, Cause: "r1", SentAt: t0, Until: t0}

	tests := []struct {
		name   string
		e      *Entry
		a      Alert
		now    time.Time
		want   Action
		reason string
		until  time.Time
	}{
		{"first error mails", nil, errA, t0, Send, "first occurrence", time.Time{}},
		{"same error within the window is suppressed", sent, errB, t0.Add(59 * time.Minute), Suppress, "not mailed again before 2026-11-23T13:00:00Z", t0.Add(time.Hour)},
		{"same error after the window mails", sent, errB, t0.Add(time.Hour), Send, "window", time.Time{}},
		{"redelivery of the mailed event mails nothing", sent, errA, t0.Add(time.Minute), AlreadySent, "was mailed", time.Time{}},
		{"resume own claim after an SMTP error", sending, errA, t0.Add(5 * time.Minute), Send, "resuming", time.Time{}},
		{"another event of an error in flight is suppressed", sending, errB, t0.Add(time.Minute), Suppress, "being mailed", t0.Add(time.Hour)},
		{"a stale claim is taken over", sending, errB, t0.Add(11 * time.Minute), Send, "taking over", time.Time{}},
		{"recovery after a mailed error mails", sent, rec, t0.Add(time.Minute), Send, "cleared", time.Time{}},
		{"recovery waits for its error in flight", sending, rec, t0.Add(time.Minute), Wait, "still in flight", time.Time{}},
		{"error waits for a recovery in flight", recSending, errB, t0.Add(time.Minute), Wait, "recovery mail", time.Time{}},
		{"recovery without an error on record is suppressed", nil, rec, t0, Ignore, "nothing to recover", time.Time{}},
		{"second recovery is suppressed", cleared, Alert{Key: rec.Key, Cause: "r2", Recovery: true}, t0.Add(time.Minute), Ignore, "already recovered", time.Time{}},
		{"redelivered recovery mails nothing", cleared, rec, t0.Add(time.Minute), AlreadySent, "was mailed", time.Time{}},
		{"error after a recovery mails at once", cleared, errB, t0.Add(time.Minute), Send, "came back", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.e, tt.a, tt.now, p)
			if d.Action != tt.want {
				t.Fatalf("action = %v (%s), want %v", d.Action, d.Reason, tt.want)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", d.Reason, tt.reason)
			}
			if !d.Until.Equal(tt.until) {
				t.Errorf("until = %v, want %v", d.Until, tt.until)
			}
		})
	}
}

func TestDecideEntries(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := Policy{Interval: time.Hour, ClaimTTL: 10 * time.Minute}
	a := Alert{Key: "k", Cause: "e1", MessageID: "<m>", Subject: "s"}
	d := Decide(nil, a, t0, p)
	wantClaim := Entry{Key: "k", State: Sending, Cause: "e1", MessageID: "<m>", Subject: "s", ClaimedAt: t0}
	wantDone := wantClaim
	wantDone.State, wantDone.SentAt, wantDone.Until = Sent, t0, t0.Add(time.Hour)
	if diff := cmp.Diff(wantClaim, d.Claim); diff != "" {
		t.Errorf("claim (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDone, d.Done); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}

	// A recovery resets the window.
	r := Decide(&d.Done, Alert{Key: "k", Cause: "r1", Recovery: true}, t0.Add(time.Minute), p)
	if r.Done.State != Cleared || !r.Done.Until.Equal(t0.Add(time.Minute)) {
		t.Errorf("recovery done = %+v, want cleared with the window ended", r.Done)
	}
}
