package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/events"
)

// MaintenanceResult is what a pause or resume did.
type MaintenanceResult struct {
	Recorded bool       `json:"recorded"`
	ID       events.ID  `json:"id,omitempty"`
	Mode     string     `json:"mode"`
	Until    *time.Time `json:"until,omitempty"`
	Text     string     `json:"text"`
}

// Maintain records a MaintenanceChanged to mode for d (0: until changed
// again); a resume of a pair not in maintenance records nothing. The
// command line and the HTTP API share it.
func Maintain(ctx context.Context, pub Publisher, p *status.Projection, mode string, d time.Duration, by, reason, defaultReason string, now time.Time) (MaintenanceResult, error) {
	if len(reason) > 1024 {
		return MaintenanceResult{}, fmt.Errorf("%w: the reason is %d bytes, at most 1024", ErrBadInput, len(reason))
	}
	if d < 0 {
		return MaintenanceResult{}, fmt.Errorf("%w: the duration %s is negative", ErrBadInput, d)
	}
	if mode == events.MaintenanceOff && p.State.Mode(now) == events.MaintenanceOff {
		return MaintenanceResult{Mode: mode, Text: "the pair is not in maintenance; nothing recorded"}, nil
	}
	ev := events.MaintenanceChanged{Mode: mode, Reason: strings.TrimSpace(reason), By: by}
	if ev.Reason == "" {
		ev.Reason = defaultReason
	}
	if d > 0 && mode != events.MaintenanceOff {
		u := now.Add(d).UTC()
		ev.Until = &u
	}
	env, err := pub.Publish(ctx, ev, nil)
	if err != nil {
		return MaintenanceResult{}, fmt.Errorf("record the change: %w", err)
	}
	res := MaintenanceResult{Recorded: true, ID: env.ID, Mode: mode, Until: ev.Until}
	switch {
	case mode == events.MaintenanceOff:
		res.Text = "maintenance over: automatic failover, the VIP and service monitors act again"
	case ev.Until != nil:
		res.Text = fmt.Sprintf("pair %s until %s (both sites)", mode, ev.Until.Format(time.RFC3339))
	default:
		res.Text = fmt.Sprintf("pair %s until drwatch resume (both sites)", mode)
	}
	return res, nil
}
