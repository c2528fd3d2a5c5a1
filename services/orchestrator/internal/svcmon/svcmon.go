// Package svcmon keeps the managed services (seed 000 serviceMonitor) in
// the state the site's role wants: started where runOn matches the role,
// stopped elsewhere. Services are systemd units, containers, or scripts
// called with start|stop|status.
package svcmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// Service is one managed service.
type Service struct {
	Name string
	// Kind: systemd, container or script.
	Kind   string
	Target string
	// RunOn: active, standby or both.
	RunOn string
}

// Wanted reports whether s runs on a site in role.
func (s Service) Wanted(role events.Role) bool {
	switch s.RunOn {
	case "both":
		return role == events.RoleActive || role == events.RoleStandby || role == events.RoleStandalone
	case "active":
		return role == events.RoleActive || role == events.RoleStandalone
	case "standby":
		return role == events.RoleStandby
	}
	return false
}

// Controller starts, stops and queries services with a bounded time per
// command.
type Controller struct {
	Timeout time.Duration
}

func (c Controller) command(s Service, verb string) (string, []string, error) {
	switch s.Kind {
	case "systemd":
		v := verb
		if verb == "status" {
			v = "is-active"
		}
		return "systemctl", []string{v, "--quiet", s.Target}, nil
	case "container":
		switch verb {
		case "status":
			return "docker", []string{"inspect", "-f", "{{.State.Running}}", s.Target}, nil
		default:
			return "docker", []string{verb, s.Target}, nil
		}
	case "script":
		return s.Target, []string{verb}, nil
	}
	return "", nil, fmt.Errorf("service %s: kind %q must be systemd, container or script", s.Name, s.Kind)
}

func (c Controller) run(ctx context.Context, s Service, verb string) (string, error) {
	name, args, err := c.command(s, verb)
	if err != nil {
		return "", err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Running reports whether s runs. A status command that exits non-zero
// means "not running" (systemctl is-active, LSB status); failing to run it
// at all is an error.
func (c Controller) Running(ctx context.Context, s Service) (bool, error) {
	out, err := c.run(ctx, s, "status")
	var ee *exec.ExitError
	switch {
	case err == nil && s.Kind == "container":
		return out == "true", nil
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && s.Kind != "container":
		return false, nil
	case errors.As(err, &ee):
		// docker inspect of a missing container: not running, but say so.
		return false, fmt.Errorf("service %s: docker inspect %s: %s", s.Name, s.Target, out)
	}
	return false, fmt.Errorf("service %s: status: %w", s.Name, err)
}

// Start starts s.
func (c Controller) Start(ctx context.Context, s Service) error {
	if out, err := c.run(ctx, s, "start"); err != nil {
		return fmt.Errorf("service %s: start %s: %w: %s", s.Name, s.Target, err, out)
	}
	return nil
}

// Stop stops s.
func (c Controller) Stop(ctx context.Context, s Service) error {
	if out, err := c.run(ctx, s, "stop"); err != nil {
		return fmt.Errorf("service %s: stop %s: %w: %s", s.Name, s.Target, err, out)
	}
	return nil
}

// Action is one correction made by Reconcile.
type Action struct {
	Service string
	Verb    string
	Err     error
}

// Reconcile brings every service to the state role wants and reports
// what it changed; a failing service does not stop the others.
func (c Controller) Reconcile(ctx context.Context, services []Service, role events.Role) []Action {
	var acts []Action
	for _, s := range services {
		want := s.Wanted(role)
		running, err := c.Running(ctx, s)
		if err != nil && want == running {
			acts = append(acts, Action{Service: s.Name, Verb: "status", Err: err})
			continue
		}
		switch {
		case want && !running:
			acts = append(acts, Action{Service: s.Name, Verb: "start", Err: c.Start(ctx, s)})
		case !want && running:
			acts = append(acts, Action{Service: s.Name, Verb: "stop", Err: c.Stop(ctx, s)})
		}
	}
	return acts
}

// Monitor runs Reconcile every interval with the role given by role until
// ctx ends. paused, when true, skips a round (a saga is moving services
// itself).
func Monitor(ctx context.Context, c Controller, services []Service, interval time.Duration, role func() (events.Role, bool), log *slog.Logger) {
	if len(services) == 0 {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, paused := role()
		if paused {
			continue
		}
		for _, a := range c.Reconcile(ctx, services, r) {
			if a.Err != nil {
				log.Warn("service monitor could not correct a service", "service", a.Service, "verb", a.Verb, "role", r, "err", a.Err)
			} else {
				log.Info("service monitor corrected a service", "service", a.Service, "verb", a.Verb, "role", r)
			}
		}
	}
}
