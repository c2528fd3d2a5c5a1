package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/events"
)

// ErrBadInput: a request's input is wrong; nothing was recorded.
var ErrBadInput = errors.New("bad input")

// AckResult is what an acknowledgement did.
type AckResult struct {
	// Recorded: a FailoverAcknowledged was recorded.
	Recorded bool `json:"recorded"`
	// Lifted is the block window it lifted, nil when none was in force.
	Lifted *status.BlockWindow `json:"lifted,omitempty"`
	ID     events.ID           `json:"id,omitempty"`
	Text   string              `json:"text"`
}

// Acknowledge records a FailoverAcknowledged when a block window holds at
// now; the command line and the HTTP API share it.
func Acknowledge(ctx context.Context, pub Publisher, p *status.Projection, by, reason, defaultReason string, now time.Time) (AckResult, error) {
	b := p.Block(now)
	if b == nil {
		text := "nothing to acknowledge: no automatic failover within failover.blockWindow holds automatic failover back"
		if !p.State.LastFailoverAt.IsZero() {
			text += fmt.Sprintf(" (last failover completed %s)", p.State.LastFailoverAt.UTC().Format(time.RFC3339))
		}
		return AckResult{Text: text + "; nothing recorded"}, nil
	}
	if strings.TrimSpace(reason) == "" {
		reason = defaultReason
	}
	if len(reason) > 1024 {
		return AckResult{}, fmt.Errorf("%w: the reason is %d bytes, at most 1024", ErrBadInput, len(reason))
	}
	env, err := pub.Publish(ctx, events.FailoverAcknowledged{By: by, Reason: reason}, nil)
	if err != nil {
		return AckResult{}, fmt.Errorf("record the acknowledgement: %w", err)
	}
	return AckResult{Recorded: true, Lifted: b, ID: env.ID, Text: fmt.Sprintf("acknowledged %s (completed %s): automatic failover is no longer blocked (the window would have ended %s)",
		cmp.Or(b.Failover, "the last automatic failover"), b.Since.UTC().Format(time.RFC3339), b.Until.UTC().Format(time.RFC3339))}, nil
}
