package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// StateServices are the watchdog services of seed 000's states section, in
// the seed's order.
var StateServices = []string{"arbiterMonitor", "configMonitor", "fileMonitor", "heartbeat", "mysqlMonitor", "pgsqlMonitor", "serviceMonitor"}

// Message codes in msg.payload.code. 0 is a passing check; the others name
// the event that failed it, so a script can branch without parsing text.
const (
	CodeOK                     = 0
	CodeArbiterQuorumLow       = 1001
	CodeFailureDetectionFailed = 1002
	CodeReplicationBroken      = 1091
	CodeReplicationLagHigh     = 1092
	CodeReplicationDiverged    = 1093
	CodeFileSyncFailed         = 1201
	CodeMonitorTripped         = 1301
	CodeConfigProblems         = 1401
)

// state is the last message of one watchdog service.
type state struct {
	ok            bool
	description   string
	code          int
	localFailover bool
	at            time.Time
	waitUntil     *time.Time
}

// stateOf maps an event to the seed service whose message it is, or "".
func stateOf(ev events.Event) (string, state) {
	switch e := ev.(type) {
	case events.ArbitrationDecided:
		st := state{ok: true, description: fmt.Sprintf("%s verdict %s (%s)", e.Method, e.Action, e.Branch)}
		if e.Action == events.ActionWait {
			st.waitUntil = e.WaitUntil
		}
		return "arbiterMonitor", st
	case events.ArbiterQuorumLow:
		return "arbiterMonitor", state{description: quorumText(e), code: CodeArbiterQuorumLow}
	case events.FailureDetectionFailed:
		return "arbiterMonitor", state{description: "failure detection failed: " + e.Reason, code: CodeFailureDetectionFailed}
	case events.RemoteUnreachable:
		return "heartbeat", state{description: fmt.Sprintf("peer %s unreachable on line %s for %.0fs", e.Peer, e.Line, e.DownForSeconds)}
	case events.RemoteReachable:
		return "heartbeat", state{ok: true}
	case events.PeerVIPMovedLocally:
		return "heartbeat", state{ok: true, localFailover: true, description: fmt.Sprintf("peer VIP %s moved inside site %s", e.VIP, e.Peer)}
	case events.ReplicationBroken:
		return dbService(e.Database), state{description: fmt.Sprintf("%s replication %s on %s: %s: %s", e.Scope, e.Database, e.Server, e.Check, e.Error), code: CodeReplicationBroken}
	case events.ReplicationRepaired:
		return dbService(e.Database), state{ok: true}
	case events.ReplicationLagHigh:
		return dbService(e.Database), state{description: fmt.Sprintf("%s on %s lags %.0fs / %d bytes", e.Database, e.Server, e.LagSeconds, e.LagBytes), code: CodeReplicationLagHigh}
	case events.ReplicationLagRecovered:
		return dbService(e.Database), state{ok: true}
	case events.ReplicationDiverged:
		return dbService(e.Database), state{description: fmt.Sprintf("%s on %s diverged: %s; resync with %s", e.Database, e.Server, strings.Join(e.Details, "; "), e.ResyncCommand), code: CodeReplicationDiverged}
	case events.FileSyncCompleted:
		return "fileMonitor", state{ok: true}
	case events.FileSyncFailed:
		return "fileMonitor", state{description: fmt.Sprintf("file sync failed: %s: %s", e.File, e.Reason), code: CodeFileSyncFailed}
	case events.MonitorTripped:
		return "serviceMonitor", state{description: fmt.Sprintf("%s monitor %s failed %d times: %s", e.Kind, e.Monitor, e.Failures, e.Detail), code: CodeMonitorTripped}
	case events.MonitorRecovered:
		return "serviceMonitor", state{ok: true}
	case events.ConfigChecked:
		if !e.OK {
			return "configMonitor", state{description: strings.Join(e.Problems, "; "), code: CodeConfigProblems}
		}
		return "configMonitor", state{ok: true}
	case events.ConfigUpdated:
		return "configMonitor", state{ok: true, description: "configuration updated: " + strings.Join(e.Changed, ",")}
	}
	return "", state{}
}

func dbService(db events.Database) string {
	if db == events.PgSQL {
		return "pgsqlMonitor"
	}
	return "mysqlMonitor"
}

func (s *Site) applyState(env *events.Envelope, ev events.Event) {
	name, st := stateOf(ev)
	if name == "" {
		return
	}
	st.at = env.Time
	s.states[name] = &st
}

// States renders this site's states section in the seed's layout.
func (p *Projection) States(now time.Time) map[string]config.ServiceState {
	s := p.Sites[p.Self]
	out := make(map[string]config.ServiceState, len(StateServices))
	for _, name := range StateServices {
		st := s.states[name]
		msg := config.StateMsg{Service: name, State: true, Progress: "unknown", Payload: map[string]any{"code": CodeOK}}
		progress := "unknown"
		switch {
		case st != nil:
			msg.State, msg.Description, msg.Time = st.ok, st.description, config.SeedTime(st.at)
			msg.Payload["code"] = st.code
			if st.ok {
				progress = "idle"
			}
		case name == "mysqlMonitor" && !p.cfg.MySQL.Enabled:
			msg.Description, progress = "not monitored: mysql.enabled is false", "idle"
		case name == "pgsqlMonitor" && !p.cfg.PgSQL.Enabled:
			msg.Description, progress = "not monitored: pgsql.enabled is false", "idle"
		default:
			msg.Description = "no report yet"
		}
		service := map[string]any{}
		if name == "heartbeat" {
			msg.Payload = map[string]any{"localFailover": st != nil && st.localFailover}
			service = p.heartbeatService(now)
		}
		out[name] = config.ServiceState{Progress: progress, Msg: msg, Service: service}
	}
	return out
}

// heartbeatService is the seed's states.heartbeat.service.
func (p *Projection) heartbeatService(now time.Time) map[string]any {
	var end, wait any
	if u := p.Automatic.Until; u != nil {
		end = config.SeedTime(*u)
	}
	if st := p.Sites[p.Self].states["arbiterMonitor"]; st != nil && st.waitUntil != nil && now.Before(*st.waitUntil) {
		wait = config.SeedTime(*st.waitUntil)
	}
	return map[string]any{
		"booting":                  false,
		"bootEndTime":              nil,
		"waitTime":                 wait,
		"automaticFailover":        p.Automatic.On(now),
		"automaticFailoverEndTime": end,
	}
}

func formatShare(n, of int) string { return fmt.Sprintf("%d/%d", n, of) }

func formatFloat(f float64) string { return fmt.Sprintf("%g", f) }
