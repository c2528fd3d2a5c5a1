package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// MySQL watches one MariaDB/MySQL server.
type MySQL struct {
	Local *mysqlrepl.Client
	// Peer is the configured primary; nil means the replica's Master_Host.
	Peer         *mysqlrepl.Client
	PeerHosts    []string
	ReplUser     string
	ReplPassword string
	// TLS, when CA is set, is required of the replication link: repoint
	// and resync use it, and a plain link fails the "tls" check.
	TLS mysqlrepl.TLSFiles
	// ApplyTimeout bounds how long a promotion waits for the SQL thread to
	// apply what the replica received (0: DefaultApplyTimeout).
	ApplyTimeout time.Duration
	// KeepDir is where a resync dumps the replica's databases before
	// dropping them (mysql.keepDir).
	KeepDir string
	Log     *slog.Logger

	mu      sync.Mutex
	derived *mysqlrepl.Client
}

// DefaultApplyTimeout is the promotion's wait for received transactions.
const DefaultApplyTimeout = 60 * time.Second

// ResyncCommandMySQL is the documented operator command for a full resync.
const ResyncCommandMySQL = "drwatch db resync --database mysql (publishes DatabaseCommand resync: dump of the primary with --gtid --master-data, loaded into the replica, gtid_slave_pos set, START SLAVE)"

// Database implements Target.
func (m *MySQL) Database() events.Database { return events.MySQL }

// primary returns the client of the primary the replica follows.
func (m *MySQL) primary(s mysqlrepl.Server) *mysqlrepl.Client {
	if m.Peer != nil {
		return m.Peer
	}
	if len(s.Replicas) == 0 || s.Replicas[0].MasterHost == "" {
		return nil
	}
	addr := net.JoinHostPort(s.Replicas[0].MasterHost, strconv.Itoa(s.Replicas[0].MasterPort))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.derived != nil && m.derived.Addr() == addr {
		return m.derived
	}
	if m.derived != nil {
		m.derived.Close()
	}
	c, err := m.Local.WithAddr(addr)
	if err != nil {
		return nil
	}
	m.derived = c
	return c
}

// Observe implements Target.
func (m *MySQL) Observe(ctx context.Context, expectReplica bool) watch.Observation {
	obs := watch.Observation{Server: m.Local.Addr(), Scope: "site"}
	s, err := m.Local.Read(ctx)
	if err != nil {
		obs.Findings = []watch.Finding{{Check: "connect", Error: err.Error()}}
		return obs
	}
	obs.Scope = mysqlrepl.Scope(s, m.PeerHosts)
	if p := m.primary(s); p != nil && expectReplica {
		if st, err := p.BinlogState(ctx); err == nil {
			s.PrimaryState = st
		} else {
			s.PrimaryErr = err.Error()
		}
	}
	f, lag, known := mysqlrepl.Evaluate(s, mysqlrepl.Expect{Replica: expectReplica, PeerHosts: m.PeerHosts,
		ResyncCommand: ResyncCommandMySQL, RequireTLS: m.TLS.CA != ""})
	obs.Findings, obs.LagSeconds, obs.LagKnown, obs.Encrypted = f, lag, known, mysqlrepl.Encrypted(s)
	return obs
}

// Act implements Target.
func (m *MySQL) Act(ctx context.Context, a watch.Action) error {
	switch a.Kind {
	case watch.Repair:
		if conn, ok := strings.CutSuffix(a.Check, "tls"); ok {
			return m.Local.RequireTLS(ctx, strings.TrimSuffix(conn, "/"), m.TLS)
		}
		return m.Local.StartReplica(ctx)
	case watch.Hold:
		return m.Local.StopReplica(ctx)
	case watch.Resync:
		// Never forced: an automatic rebuild does not replace a primary.
		r, err := m.resync(ctx, false)
		if err == nil && r.Kept != "" && m.Log != nil {
			m.Log.Warn("automatic resync kept the replaced databases", "kept", r.Kept, "discarded", r.Discarded)
		}
		return err
	}
	return fmt.Errorf("mysql: unknown action %q", a.Kind)
}

// resync replaces the replica's data with a copy of its primary's, after
// keeping a dump of it. A server with no replica connection is a primary
// (or a former one never re-pointed): its data may be the only copy of
// what the pair wrote, so it is replaced only when forced.
func (m *MySQL) resync(ctx context.Context, force bool) (mysqlrepl.Resynced, error) {
	s, err := m.Local.Read(ctx)
	if err != nil {
		return mysqlrepl.Resynced{}, err
	}
	if len(s.Replicas) == 0 && !force {
		return mysqlrepl.Resynced{}, fmt.Errorf("resync of mysql %s refused: %w: it replicates from nobody, so its data may be the only copy of what was written on it (gtid_binlog_pos %s); send the resync with force to replace it anyway (a dump is kept first)",
			m.Local.Addr(), ErrIsPrimary, s.BinlogPos)
	}
	p := m.primary(s)
	if p == nil {
		return mysqlrepl.Resynced{}, fmt.Errorf("resync %s: no primary known: set mysql.peerDsn or repoint first", m.Local.Addr())
	}
	return m.Local.Resync(ctx, p, m.ReplUser, m.ReplPassword, m.TLS, m.KeepDir)
}

// Command implements Target.
func (m *MySQL) Command(ctx context.Context, cmd events.DatabaseCommand) (events.DatabaseCommandDone, error) {
	var done events.DatabaseCommandDone
	var err error
	switch cmd.Command {
	case "promote":
		wait := m.ApplyTimeout
		if wait <= 0 {
			wait = DefaultApplyTimeout
		}
		var p mysqlrepl.Promoted
		p, err = m.Local.Promote(ctx, mysqlrepl.PromoteOptions{ApplyTimeout: wait, Force: cmd.Force})
		done.Position = p.Position
		if err == nil && p.Discarded != "" {
			// OK, but the answer must say what the forced promotion lost.
			done.Error = "forced: discarded " + p.Discarded
		}
	case "demote":
		if err = m.Local.Fence(ctx); err == nil {
			done.Position, err = m.Local.Position(ctx)
		}
	case "repoint":
		if cmd.PrimaryHost == "" || cmd.PrimaryPort == 0 {
			return done, fmt.Errorf("repoint needs primaryHost and primaryPort")
		}
		if err = m.Local.Repoint(ctx, cmd.PrimaryHost, cmd.PrimaryPort, m.ReplUser, m.ReplPassword, m.TLS); err == nil {
			done.Position, err = m.Local.Position(ctx)
		}
	case "position":
		done.Position, done.LagTransactions, done.FollowsNone, err = m.position(ctx)
	case "resync":
		var r mysqlrepl.Resynced
		r, err = m.resync(ctx, cmd.Force)
		done.Position, done.Kept, done.Discarded = r.Position, r.Kept, r.Discarded
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownCommand, cmd.Command)
	}
	return done, err
}

// PositionPrimaryTimeout bounds the look at the primary in a position
// answer. The saga asks for one right before promoting, when the primary
// is usually dead: silent, it would cost the connect timeout (3 s) of each
// database on every takeover. A primary that does not answer within it
// counts as unknown, as one that refuses does.
const PositionPrimaryTimeout = time.Second

// position reports the GTID position, whether the server follows no
// primary (no replica connection: a primary, or a former one never
// re-pointed) and, when the primary is readable, how many transactions
// behind it this server is (MariaDB has no byte offset that means the same
// on both servers: LagTransactions, not LagBytes).
func (m *MySQL) position(ctx context.Context) (pos string, behind int64, followsNone bool, err error) {
	pos, err = m.Local.Position(ctx)
	if err != nil {
		return "", 0, false, err
	}
	s, err := m.Local.Read(ctx)
	if err != nil {
		return pos, 0, false, err
	}
	followsNone = len(s.Replicas) == 0
	p := m.primary(s)
	if p == nil {
		return pos, 0, followsNone, nil
	}
	pctx, cancel := context.WithTimeout(ctx, PositionPrimaryTimeout)
	ppos, err := p.Position(pctx)
	cancel()
	if err != nil {
		return pos, 0, followsNone, nil
	}
	mine, err1 := mysqlrepl.ParseGTIDList(pos)
	theirs, err2 := mysqlrepl.ParseGTIDList(ppos)
	if err1 != nil || err2 != nil {
		return pos, 0, followsNone, nil
	}
	return pos, mysqlrepl.Behind(mine, theirs), followsNone, nil
}
