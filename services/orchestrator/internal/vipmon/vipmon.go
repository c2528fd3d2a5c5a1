// Package vipmon keeps the VIP where the site's role wants it at all times,
// not only during a failover: on an active site the address is on
// vip.interface (added and announced when missing, e.g. after a restart or
// an operator's `ip addr del`); on a standby or standalone site it is
// absent (removed when present — a fence: a standby must never answer on
// the VIP). While a saga runs the saga owns the VIP and the monitor stands
// back.
package vipmon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator/internal/vip"
)

// VIP is the service address as the monitor needs it.
type VIP interface {
	Held(ctx context.Context) (bool, error)
	Take(ctx context.Context) error
	Release(ctx context.Context) error
	// Names returns the address (with prefix) and the interface, for the
	// record.
	Names() (address, iface string)
}

// Want reports whether a site in role holds the VIP. Only an active site
// does: a standalone site has no pair to serve through a VIP, and holding
// it there would make it answer beside whichever site the peer's VIP moved
// to.
func Want(role events.Role) bool { return role == events.RoleActive }

// Status is what one round sees: the role and whether to stand back.
type Status struct {
	Role events.Role
	// Paused: a saga is moving the VIP itself.
	Paused bool
	// ObserveOnly: failover.observeOnly — report a wrong VIP, never touch it.
	ObserveOnly bool
}

// Monitor reconciles the VIP with the role.
type Monitor struct {
	VIP VIP
	// Publish records a change in the site's log.
	Publish func(ctx context.Context, ev events.VIPChanged) error
	Log     *slog.Logger
	// Lock, when set, is held across a round — reading the status and
	// moving the address — so a saga that takes the same lock around its
	// own VIP steps never interleaves with a round working from a role
	// the saga is about to change.
	Lock sync.Locker

	// reported is the last problem logged, so a problem that persists
	// (no CAP_NET_ADMIN, a missing interface) is logged once, not on
	// every round; a clean round clears it.
	reported string
}

// Outcome is what one round did.
type Outcome struct {
	// Changed is the change made, nil when none.
	Changed *events.VIPChanged
	// Skipped says why the round did nothing ("paused", "observe-only"),
	// empty otherwise.
	Skipped string
	Err     error
}

// Reconcile runs one round.
func (m *Monitor) Reconcile(ctx context.Context, st Status) Outcome {
	if st.Paused {
		return Outcome{Skipped: "paused"}
	}
	addr, iface := m.VIP.Names()
	want := Want(st.Role)
	held, err := m.VIP.Held(ctx)
	if err != nil {
		m.problem("cannot read the VIP's state", err, st.Role)
		return Outcome{Err: err}
	}
	if held == want {
		m.reported = ""
		return Outcome{}
	}
	var reason string
	if want {
		reason = "the active site did not hold the VIP (after a restart, or removed by hand); added and announced"
	} else {
		reason = "a " + string(st.Role) + " site held the VIP; removed so it never answers on it"
	}
	if st.ObserveOnly {
		if m.reported != "observe-only" {
			m.reported = "observe-only"
			m.Log.Warn("VIP not where the role wants it; failover.observeOnly leaves it as it is",
				"address", addr, "interface", iface, "role", st.Role, "held", held)
		}
		return Outcome{Skipped: "observe-only"}
	}
	if want {
		err = m.VIP.Take(ctx)
	} else {
		err = m.VIP.Release(ctx)
	}
	if err != nil {
		m.problem("cannot put the VIP where the role wants it", err, st.Role)
		return Outcome{Err: err}
	}
	m.reported = ""
	ev := events.VIPChanged{Address: addr, Interface: iface, Held: want, Role: st.Role, Reason: reason}
	m.Log.Info("VIP reconciled with the role", "address", addr, "interface", iface, "held", want, "role", st.Role)
	if m.Publish != nil {
		if err := m.Publish(ctx, ev); err != nil {
			// The address moved; only the record is missing. Say so and
			// go on: the next round finds nothing to change.
			m.Log.Error("VIP moved but its record failed", "err", err)
		}
	}
	return Outcome{Changed: &ev}
}

func (m *Monitor) problem(what string, err error, role events.Role) {
	msg := err.Error()
	if msg == m.reported {
		return
	}
	m.reported = msg
	if errors.Is(err, vip.ErrPermission) {
		m.Log.Error(what+": this process lacks CAP_NET_ADMIN/CAP_NET_RAW; the VIP stays wrong until drwatch runs as root or is granted them (reported once)",
			"role", role, "err", err)
		return
	}
	m.Log.Error(what+" (reported once until it changes)", "role", role, "err", err)
}

// Run reconciles every interval until ctx ends; status gives the role and
// whether a saga holds the VIP. The first round runs at once.
func (m *Monitor) Run(ctx context.Context, interval time.Duration, status func() Status) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if m.Lock != nil {
			m.Lock.Lock()
		}
		m.Reconcile(ctx, status())
		if m.Lock != nil {
			m.Lock.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
