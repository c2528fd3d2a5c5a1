package monitor

import (
	"context"
	"fmt"
	"sync"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// ResyncCommandPgSQL is the documented operator command for a rebuild.
const ResyncCommandPgSQL = "pg_ctl -D $PGDATA stop && pg_rewind --target-pgdata=$PGDATA --source-server='host=PRIMARY user=drwatch' -R (or: mv $PGDATA aside; pg_basebackup -h PRIMARY -U replication -D $PGDATA -R -X stream) && pg_ctl -D $PGDATA start"

// PgSQL watches one PostgreSQL server.
type PgSQL struct {
	Local        *pgrepl.Client
	Peer         *pgrepl.Client
	PeerHosts    []string
	ReplUser     string
	ReplPassword string

	mu       sync.Mutex
	derived  *pgrepl.Client
	lastSeen *pgrepl.Receiver
}

// Close releases the pools.
func (p *PgSQL) Close() {
	p.Local.Close()
	if p.Peer != nil {
		p.Peer.Close()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.derived != nil {
		p.derived.Close()
	}
}

// Database implements Target.
func (p *PgSQL) Database() events.Database { return events.PgSQL }

func (p *PgSQL) primary(ctx context.Context, r *pgrepl.Receiver) *pgrepl.Client {
	if p.Peer != nil {
		return p.Peer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Remember the last sender: while the receiver is down the row is gone
	// but the primary is still the one to compare with.
	if r != nil && r.SenderHost != "" {
		p.lastSeen = r
	}
	if p.lastSeen == nil {
		return nil
	}
	addr := fmt.Sprintf("%s:%d", p.lastSeen.SenderHost, p.lastSeen.SenderPort)
	if p.derived != nil && p.derived.Addr() == addr {
		return p.derived
	}
	if p.derived != nil {
		p.derived.Close()
	}
	c, err := p.Local.WithAddr(ctx, p.lastSeen.SenderHost, p.lastSeen.SenderPort)
	if err != nil {
		return nil
	}
	p.derived = c
	return c
}

// Observe implements Target.
func (p *PgSQL) Observe(ctx context.Context, expectStandby bool) watch.Observation {
	obs := watch.Observation{Server: p.Local.Addr(), Scope: "site"}
	s, err := p.Local.Read(ctx)
	if err != nil {
		obs.Findings = []watch.Finding{{Check: "connect", Error: err.Error()}}
		return obs
	}
	var prim *pgrepl.Primary
	if expectStandby {
		if c := p.primary(ctx, s.Receiver); c != nil {
			var need pgrepl.LSN
			if s.InRecovery && (s.Receiver == nil || s.Receiver.Status != "streaming") {
				need = max(s.Receive, s.Replay)
			}
			r, err := c.ReadPrimary(ctx, need)
			if err != nil {
				r.Err = err.Error()
			}
			prim = &r
			for _, h := range p.PeerHosts {
				if c.Addr() == h || (s.Receiver != nil && s.Receiver.SenderHost == h) {
					obs.Scope = "cross"
				}
			}
		}
	}
	f, sec, b, known := pgrepl.Evaluate(s, prim, expectStandby, ResyncCommandPgSQL)
	obs.Findings, obs.LagSeconds, obs.LagBytes, obs.LagKnown = f, sec, b, known
	return obs
}

// Act implements Target.
func (p *PgSQL) Act(ctx context.Context, a watch.Action) error {
	switch a.Kind {
	case watch.Repair:
		return p.Local.Reconnect(ctx, p.conninfo())
	case watch.Hold:
		// A standby on a forked timeline cannot replay the primary's WAL;
		// PostgreSQL itself refuses, so there is nothing to stop.
		return nil
	case watch.Resync:
		return fmt.Errorf("pgsql resync of %s needs the host: %s", p.Local.Addr(), ResyncCommandPgSQL)
	}
	return fmt.Errorf("pgsql: unknown action %q", a.Kind)
}

// conninfo rebuilds primary_conninfo from the configured peer; empty
// means keep what the standby has.
func (p *PgSQL) conninfo() string {
	if p.Peer == nil || p.ReplUser == "" {
		return ""
	}
	host, port := p.Peer.Addr(), ""
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			host, port = host[:i], host[i+1:]
			break
		}
	}
	return fmt.Sprintf("host=%s port=%s user=%s password=%s application_name=drwatch", host, port, p.ReplUser, p.ReplPassword)
}

// Command implements Target.
func (p *PgSQL) Command(ctx context.Context, cmd events.DatabaseCommand) (events.DatabaseCommandDone, error) {
	var done events.DatabaseCommandDone
	var err error
	switch cmd.Command {
	case "promote":
		done.Position, err = p.Local.Promote(ctx)
	case "demote":
		if err = p.Local.Fence(ctx); err == nil {
			done.Position, err = p.Local.Position(ctx)
		}
	case "repoint":
		if cmd.PrimaryHost == "" || cmd.PrimaryPort == 0 {
			return done, fmt.Errorf("repoint needs primaryHost and primaryPort")
		}
		ci := fmt.Sprintf("host=%s port=%d user=%s password=%s application_name=drwatch", cmd.PrimaryHost, cmd.PrimaryPort, p.ReplUser, p.ReplPassword)
		if err = p.Local.Reconnect(ctx, ci); err == nil {
			done.Position, err = p.Local.Position(ctx)
		}
	case "position":
		done.Position, err = p.Local.Position(ctx)
		if err == nil {
			obs := p.Observe(ctx, true)
			done.LagBytes = obs.LagBytes
		}
	case "resync":
		err = fmt.Errorf("pgsql resync needs the host: %s", ResyncCommandPgSQL)
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownCommand, cmd.Command)
	}
	return done, err
}
