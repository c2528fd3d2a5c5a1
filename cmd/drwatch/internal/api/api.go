// Package api serves the operator's data over HTTP, authenticated with the
// bearer token http.token: the `api v1 config` sections, the pair status
// and the health checks, the same JSON as the command line prints.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/config"
)

// Routes returns the API's handlers, keyed by ServeMux pattern, to mount
// beside /healthz and /metrics. Without http.token every route answers 403:
// the API never runs unauthenticated.
func Routes(cfg *config.Config, log status.Replayer, now func() time.Time) map[string]http.Handler {
	s := &server{cfg: cfg, log: log, now: now}
	return map[string]http.Handler{
		"GET /api/v1/config": s.auth(s.config),
		"GET /api/v1/status": s.auth(s.status),
		"GET /api/v1/health": s.auth(s.health),
	}
}

type server struct {
	cfg *config.Config
	log status.Replayer
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
	p, err := status.Load(r.Context(), s.log, s.cfg)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read the log: "+err.Error())
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
	p, err := status.Load(r.Context(), s.log, s.cfg)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read the log: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, p.Pair(s.now()))
}

// health answers 200 when every check passes, 503 otherwise, with the
// checks either way.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	p, err := status.Load(r.Context(), s.log, s.cfg)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read the log: "+err.Error())
		return
	}
	checks := p.Checks(s.now())
	code := http.StatusOK
	if !status.Healthy(checks) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"healthy": code == http.StatusOK, "checks": checks})
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
