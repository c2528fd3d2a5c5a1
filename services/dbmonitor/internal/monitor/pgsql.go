package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pghost"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// PgTLS names the files a standby verifies its primary with (paths on
// this host, readable by pgsql.osUser).
type PgTLS struct{ CA, Cert, Key string }

// ResyncCommandPgSQL is the documented operator command for a rebuild.
const ResyncCommandPgSQL = "pg_ctl -D $PGDATA stop && pg_rewind --target-pgdata=$PGDATA --source-server='host=PRIMARY user=drwatch' -R (or: mv $PGDATA aside; pg_basebackup -h PRIMARY -U replication -D $PGDATA -R -X stream) && pg_ctl -D $PGDATA start"

// PgSQL watches one PostgreSQL server.
type PgSQL struct {
	Local        *pgrepl.Client
	Peer         *pgrepl.Client
	PeerHosts    []string
	ReplUser     string
	ReplPassword string
	// Host, when set, is this server's data directory and tools: resync and
	// the return of a former primary to standby are then done here.
	Host *pghost.Host
	// TLS, when CA is set, is required of the replication link:
	// primary_conninfo gets sslmode=verify-ca and the check "tls" fails
	// while the link is plain.
	TLS PgTLS
	// StreamTimeout bounds the wait for a rebuilt standby to stream (90 s
	// when zero).
	StreamTimeout time.Duration
	Log           *slog.Logger
	Now           func() time.Time

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
	return p.observe(ctx, expectStandby, 0)
}

// observe is Observe with the look at the primary bounded by
// primaryTimeout when it is not 0.
func (p *PgSQL) observe(ctx context.Context, expectStandby bool, primaryTimeout time.Duration) watch.Observation {
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
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if primaryTimeout > 0 {
				pctx, cancel = context.WithTimeout(ctx, primaryTimeout)
			}
			r, err := c.ReadPrimary(pctx, need)
			cancel()
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
	f, sec, b, known := pgrepl.Evaluate(s, prim, expectStandby, ResyncCommandPgSQL, p.TLS.CA != "")
	obs.Findings, obs.LagSeconds, obs.LagBytes, obs.LagKnown = f, sec, b, known
	if expectStandby {
		obs.Encrypted = pgrepl.Encrypted(s, prim)
	}
	return obs
}

// Act implements Target.
func (p *PgSQL) Act(ctx context.Context, a watch.Action) error {
	switch a.Kind {
	case watch.Repair:
		if a.Check == "tls" {
			host, port, err := p.primaryAddr("", 0)
			if err != nil {
				return err
			}
			return p.Local.Reconnect(ctx, p.replConninfo(host, port), true)
		}
		return p.Local.Reconnect(ctx, p.conninfo(), false)
	case watch.Hold:
		// A standby on a forked timeline cannot replay the primary's WAL;
		// PostgreSQL itself refuses, so there is nothing to stop.
		return nil
	case watch.Resync:
		_, err := p.resync(ctx, "", 0)
		return err
	}
	return fmt.Errorf("pgsql: unknown action %q", a.Kind)
}

// conninfo rebuilds primary_conninfo from the configured peer; empty
// means keep what the standby has.
func (p *PgSQL) conninfo() string {
	if p.Peer == nil || p.ReplUser == "" {
		return ""
	}
	host, port, err := splitHostPort(p.Peer.Addr())
	if err != nil {
		return ""
	}
	return p.replConninfo(host, port)
}

// replConninfo is the standby's primary_conninfo for host:port: the
// replication user with its password (the server keeps it in
// postgresql.auto.conf, 0600), and certificate verification when TLS is
// configured.
func (p *PgSQL) replConninfo(host string, port int) string {
	return p.replConninfoNoPass(host, port) + " password=" + kv(p.ReplPassword)
}

// replConninfoNoPass is replConninfo without the password, for a tool's
// command line (pg_basebackup), which every local user can read.
func (p *PgSQL) replConninfoNoPass(host string, port int) string {
	ci := fmt.Sprintf("host=%s port=%d user=%s application_name=drwatch",
		kv(host), port, kv(p.ReplUser))
	if p.TLS.CA != "" {
		ci += " sslmode=verify-ca sslrootcert=" + kv(p.TLS.CA)
		if p.TLS.Cert != "" {
			ci += " sslcert=" + kv(p.TLS.Cert) + " sslkey=" + kv(p.TLS.Key)
		}
	}
	return ci
}

func kv(s string) string {
	for _, r := range s {
		if r == ' ' || r == '\'' || r == '\\' || r == '=' {
			return "'" + escKV(s) + "'"
		}
	}
	if s == "" {
		return "''"
	}
	return s
}

func escKV(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\'' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}

func splitHostPort(addr string) (string, int, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	return h, port, err
}

// primaryAddr is the primary a resync copies: the command's, else the
// configured peer, else the last sender the WAL receiver named.
func (p *PgSQL) primaryAddr(host string, port int) (string, int, error) {
	if host != "" && port != 0 {
		return host, port, nil
	}
	if p.Peer != nil {
		return splitHostPort(p.Peer.Addr())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastSeen != nil && p.lastSeen.SenderHost != "" {
		return p.lastSeen.SenderHost, p.lastSeen.SenderPort, nil
	}
	return "", 0, fmt.Errorf("no primary known for %s: set pgsql.peerDsn or give primaryHost/primaryPort", p.Local.Addr())
}

// ErrNotLocal means the command needs the server's data directory on this
// host and pgsql.dataDir is not set.
var ErrNotLocal = errors.New("pgsql.dataDir is not set")

// resync rebuilds this standby from the primary at host:port (or the
// known one): pg_rewind when only the timelines diverged, else (or when
// rewinding fails) a fresh pg_basebackup; then it waits until the standby
// streams. It returns the position replication resumed from.
func (p *PgSQL) resync(ctx context.Context, host string, port int) (string, error) {
	if p.Host == nil {
		return "", fmt.Errorf("pgsql resync of %s: %w: run on the standby's host with pgsql.dataDir, or by hand: %s", p.Local.Addr(), ErrNotLocal, ResyncCommandPgSQL)
	}
	host, port, err := p.primaryAddr(host, port)
	if err != nil {
		return "", err
	}
	// A standby whose WAL is gone from the primary gains nothing from
	// pg_rewind ("no rewind required", then the same missing segment).
	walGone := false
	if s, err := p.Local.Read(ctx); err == nil && s.InRecovery {
		if c, err := p.Local.WithAddr(ctx, host, port); err == nil {
			if pr, err := c.ReadPrimary(ctx, max(s.Receive, s.Replay)); err == nil && pr.SegmentGone {
				walGone = true
			}
			c.Close()
		}
	}
	return p.rebuild(ctx, host, port, !walGone)
}

// rebuild makes the local server a standby of host:port.
func (p *PgSQL) rebuild(ctx context.Context, host string, port int, tryRewind bool) (string, error) {
	if p.Host == nil {
		return "", fmt.Errorf("%s: %w", p.Local.Addr(), ErrNotLocal)
	}
	opts, err := p.Host.Options()
	if err != nil {
		return "", fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	repl := p.replConninfo(host, port)
	log := p.logger().With("primary", net.JoinHostPort(host, strconv.Itoa(port)), "dataDir", p.Host.DataDir)
	if tryRewind {
		err := p.rewind(ctx, opts, host, port, repl)
		if err == nil {
			log.Info("rewound to a standby")
			return p.Local.Position(ctx)
		}
		log.Warn("pg_rewind failed, copying the primary in full", "err", err)
	}
	if err := p.Host.BaseBackup(ctx, p.replConninfoNoPass(host, port), p.ReplPassword); err != nil {
		return "", fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	if err := p.Host.Stop(ctx); err != nil {
		return "", fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	old, err := p.Host.Swap(p.now())
	if err != nil {
		return "", fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	err = p.Host.WriteStandby(repl)
	if err == nil {
		err = p.Host.Start(ctx, opts)
	}
	if err == nil {
		err = p.waitStreaming(ctx, port)
	}
	if err != nil {
		// Keep what the server had: the failed copy goes aside, the old
		// directory comes back (an operator may still need it).
		_ = p.Host.Stop(ctx)
		if rerr := p.Host.Restore(old); rerr != nil {
			return "", fmt.Errorf("rebuild %s: %w; restoring %s failed too: %v", p.Local.Addr(), err, old, rerr)
		}
		_ = p.Host.Start(ctx, opts)
		return "", fmt.Errorf("rebuild %s from a base backup: %w (old data directory restored)", p.Local.Addr(), err)
	}
	if err := os.RemoveAll(old); err != nil {
		log.Warn("remove old data directory", "dir", old, "err", err)
	}
	log.Info("rebuilt from a base backup")
	return p.Local.Position(ctx)
}

func (p *PgSQL) rewind(ctx context.Context, opts, host string, port int, repl string) error {
	// pg_rewind reads the source's timeline from its control file, which a
	// just-promoted server updates only at its next checkpoint: without one
	// it sees "the same timeline", rewinds nothing, and the server then
	// waits forever for WAL of a timeline forked before its own position.
	src, err := p.Local.WithAddr(ctx, host, port)
	if err != nil {
		return err
	}
	_, err = src.Pool().Exec(ctx, "CHECKPOINT")
	src.Close()
	if err != nil {
		return fmt.Errorf("checkpoint on the new primary %s:%d before pg_rewind: %w", host, port, err)
	}
	if err := p.Host.Stop(ctx); err != nil {
		return err
	}
	source, password := p.Local.AdminConninfo(host, port)
	out, err := p.Host.Rewind(ctx, source, password)
	if err != nil {
		return err
	}
	p.logger().Info("pg_rewind", "output", lastLine(out))
	if err := p.Host.WriteStandby(repl); err != nil {
		return err
	}
	if err := p.Host.Start(ctx, opts); err != nil {
		return err
	}
	return p.waitStreaming(ctx, port)
}

// waitStreaming waits until the local server is a standby streaming from
// port.
func (p *PgSQL) waitStreaming(ctx context.Context, port int) error {
	d := p.StreamTimeout
	if d <= 0 {
		d = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	last := "no reading"
	for {
		s, err := p.Local.Read(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case !s.InRecovery:
			last = "server is not in recovery"
		case s.Receiver == nil:
			last = "no WAL receiver"
		case s.Receiver.Status != "streaming" || s.Receiver.SenderPort != port:
			last = fmt.Sprintf("WAL receiver %s from %s:%d", s.Receiver.Status, s.Receiver.SenderHost, s.Receiver.SenderPort)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not stream from port %d after %s: %s", p.Local.Addr(), port, d, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *PgSQL) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *PgSQL) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// follow points this server at the primary host:port: a standby re-reads
// primary_conninfo; a (former) primary is rewound into a standby when its
// data directory is local.
func (p *PgSQL) follow(ctx context.Context, host string, port int) (string, error) {
	s, err := p.Local.Read(ctx)
	if err != nil {
		return "", err
	}
	if s.InRecovery {
		if err := p.Local.Reconnect(ctx, p.replConninfo(host, port), true); err != nil {
			return "", err
		}
		return p.Local.Position(ctx)
	}
	if p.Host == nil {
		return "", fmt.Errorf("%s is a primary: returning it to standby of %s:%d needs its data directory: %w", p.Local.Addr(), host, port, ErrNotLocal)
	}
	return p.rebuild(ctx, host, port, true)
}

// Command implements Target.
func (p *PgSQL) Command(ctx context.Context, cmd events.DatabaseCommand) (events.DatabaseCommandDone, error) {
	var done events.DatabaseCommandDone
	var err error
	switch cmd.Command {
	case "promote":
		done.Position, err = p.Local.Promote(ctx)
	case "demote":
		// Fence first: writes stop at once, whatever comes next.
		if err = p.Local.Fence(ctx); err != nil {
			break
		}
		if cmd.PrimaryHost != "" && cmd.PrimaryPort != 0 && p.Host != nil {
			done.Position, err = p.follow(ctx, cmd.PrimaryHost, cmd.PrimaryPort)
		} else {
			done.Position, err = p.Local.Position(ctx)
		}
	case "repoint":
		if cmd.PrimaryHost == "" || cmd.PrimaryPort == 0 {
			return done, fmt.Errorf("repoint needs primaryHost and primaryPort")
		}
		done.Position, err = p.follow(ctx, cmd.PrimaryHost, cmd.PrimaryPort)
	case "position":
		done.Position, err = p.Local.Position(ctx)
		var s pgrepl.Standby
		if err == nil {
			s, err = p.Local.Read(ctx)
		}
		if err == nil {
			// Out of recovery: a primary, or a former one never made a
			// standby again.
			done.FollowsNone = !s.InRecovery
			obs := p.observe(ctx, true, PositionPrimaryTimeout)
			done.LagBytes = obs.LagBytes
		}
	case "resync":
		done.Position, err = p.resync(ctx, cmd.PrimaryHost, cmd.PrimaryPort)
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownCommand, cmd.Command)
	}
	return done, err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
