// Package api serves the operator's data and actions over HTTP,
// authenticated with the bearer token http.token: the `api v1 config`
// sections, the pair status, the health checks and the history, the same
// JSON as the command line prints, and the write routes for an
// acknowledgement and a switchover; plus an open GET /role for load
// balancers.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/orchestrator"
)

// Log is the site's log as the API reads and writes it; *bus.Bus
// implements it.
type Log interface {
	status.Replayer
	Publisher
}

// Publisher records an event in the site's log.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, parent *events.Envelope) (*events.Envelope, error)
}

// Routes returns the API's handlers, keyed by ServeMux pattern, to mount
// beside /healthz and /metrics. Without http.token every /api route
// answers 403: the API never runs unauthenticated. GET /role alone is
// open, for load balancers and GSLB health checks that carry no token
// (Patroni's /primary): it tells only whether this site is active.
func Routes(cfg *config.Config, log Log, now func() time.Time) map[string]http.Handler {
	s := &server{cfg: cfg, log: log, now: now}
	return map[string]http.Handler{
		"GET /api/v1/config":        s.auth(s.config),
		"GET /api/v1/status":        s.auth(s.status),
		"GET /api/v1/health":        s.auth(s.health),
		"GET /api/v1/history":       s.auth(s.history),
		"POST /api/v1/failover/ack": s.auth(s.ack),
		"POST /api/v1/switchover":   s.auth(s.switchover),
		"POST /api/v1/pause":        s.auth(s.pause),
		"POST /api/v1/resume":       s.auth(s.resume),
		"GET /role":                 http.HandlerFunc(s.role),
	}
}

type server struct {
	cfg *config.Config
	log Log
	now func() time.Time
}

func (s *server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := s.cfg.HTTP.Token.Value()
		if token == "" {
			writeError(w, http.StatusForbidden, "the API is disabled: set http.token in the site configuration")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="drwatch"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

// config is `api v1 config`: ?include=core,states or every section.
func (s *server) config(w http.ResponseWriter, r *http.Request) {
	var names []string
	if inc := r.URL.Query().Get("include"); inc != "" {
		names = strings.Split(inc, ",")
	}
	if _, err := s.cfg.APISections(config.Runtime{}, names...); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	out, err := s.cfg.APISections(p.Runtime(s.now()), names...)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, p.Pair(s.now()))
}

// health answers 200 when no check fails (warnings allowed), 503
// otherwise, with the checks and the worst level either way.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	checks := p.Checks(s.now())
	code := http.StatusOK
	if !status.Healthy(checks) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"healthy": code == http.StatusOK, "level": status.Worst(checks), "checks": checks})
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, p.History())
}

// role answers 200 "active" on the active site and 503 with the role
// elsewhere (standby, a site whose log cannot be read), so a load balancer
// sends traffic to the active site only.
func (s *server) role(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p, err := status.Load(r.Context(), s.log, s.cfg)
	if err != nil {
		http.Error(w, "unknown: read the log: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	role := p.State.Role
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if role == events.RoleActive && p.State.RoleKnown {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "%s\n", role)
}

// decodeBody reads a small JSON body into v; an empty body leaves v as is.
// Unknown fields are errors, as in the configuration.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// project replays the log into the status projection, answering 503
// itself when it cannot.
func (s *server) project(w http.ResponseWriter, r *http.Request) (*status.Projection, bool) {
	p, err := status.Load(r.Context(), s.log, s.cfg)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read the log: "+err.Error())
		return nil, false
	}
	return p, true
}

// by names who asked over HTTP, as events record it.
func by(r *http.Request) string {
	return "http-api@" + r.RemoteAddr
}

// ack is `drwatch failover ack`: {"reason": "..."}.
func (s *server) ack(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	res, err := Acknowledge(r.Context(), s.log, p, by(r), body.Reason, "acknowledged over the HTTP API of site "+s.cfg.Site.Name, s.now())
	switch {
	case errors.Is(err, ErrBadInput):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// switchover is `drwatch switchover --yes` without waiting:
// {"to": "b", "reason": "...", "dryRun": false}. It answers 202 with the
// recorded request and the plan, 200 with the plan alone for a dry run,
// and 409 with the reason when the pair or a guard refuses it now.
// Follow the outcome with GET /api/v1/history or /api/v1/status.
func (s *server) switchover(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To     events.SiteID `json:"to"`
		Reason string        `json:"reason"`
		DryRun bool          `json:"dryRun"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Reason == "" {
		body.Reason = "switchover over the HTTP API of site " + s.cfg.Site.Name
	}
	if len(body.Reason) > 1024 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason is %d bytes, at most 1024", len(body.Reason)))
		return
	}
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	target, err := p.SwitchoverTarget(body.To)
	switch {
	case errors.Is(err, status.ErrBadTarget):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	req := events.FailoverRequested{Target: target, ToRole: events.RoleActive, Manual: true, Reason: body.Reason, RequestedBy: by(r), Epoch: p.MaxEpoch}
	pv, err := orchestrator.PreviewRequest(s.cfg, p.ViewOf(target), req, s.now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := map[string]any{"target": target, "decision": pv}
	if !pv.Act {
		out["error"] = fmt.Sprintf("site %s would refuse it now: %s (%s); nothing recorded", target, pv.Reason, pv.Branch)
		writeJSON(w, http.StatusConflict, out)
		return
	}
	if body.DryRun {
		writeJSON(w, http.StatusOK, out)
		return
	}
	env, err := s.log.Publish(r.Context(), req, nil)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "record the request: "+err.Error())
		return
	}
	out["requestId"] = env.ID
	writeJSON(w, http.StatusAccepted, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// pause is `drwatch pause`: {"for": "2h", "observeOnly": false,
// "reason": "..."}; "for" absent or "0" lasts until a resume.
func (s *server) pause(w http.ResponseWriter, r *http.Request) {
	var body struct {
		For         string `json:"for"`
		ObserveOnly bool   `json:"observeOnly"`
		Reason      string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var d time.Duration
	if body.For != "" && body.For != "0" {
		var err error
		if d, err = time.ParseDuration(body.For); err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("for %q: want a positive duration such as 2h or 30m, or 0 until resumed", body.For))
			return
		}
	}
	mode := events.MaintenancePaused
	if body.ObserveOnly {
		mode = events.MaintenanceObserveOnly
	}
	s.maintain(w, r, mode, d, body.Reason)
}

// resume is `drwatch resume`: {"reason": "..."}.
func (s *server) resume(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.maintain(w, r, events.MaintenanceOff, 0, body.Reason)
}

func (s *server) maintain(w http.ResponseWriter, r *http.Request, mode string, d time.Duration, reason string) {
	p, ok := s.project(w, r)
	if !ok {
		return
	}
	res, err := Maintain(r.Context(), s.log, p, mode, d, by(r), reason, "maintenance over the HTTP API of site "+s.cfg.Site.Name, s.now())
	switch {
	case errors.Is(err, ErrBadInput):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
