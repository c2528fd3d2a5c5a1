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
	// TLS, when CA is set, is required of every connection to another
	// server (paths on this host, readable by pgsql.osUser):
	// primary_conninfo, pg_basebackup, pg_rewind's source and dbmonitor's
	// own look at the primary use sslmode=verify-full, and the check "tls"
	// fails while the replication link is plain.
	TLS pgrepl.TLSFiles
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
	c, err := p.Local.WithAddr(ctx, p.lastSeen.SenderHost, p.lastSeen.SenderPort, p.TLS)
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
		// Never forced: an automatic rebuild does not replace a primary.
		r, err := p.resync(ctx, "", 0, false)
		if err == nil && r.Kept != "" {
			p.logger().Warn("automatic rebuild kept the replaced data directory", "kept", r.Kept, "discarded", r.Discarded)
		}
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
		// verify-full: a certificate from the same CA issued to another
		// host (the standby's own) must not pass for the primary's.
		ci += " " + p.TLS.Conninfo()
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

// Rebuilt is what a rebuild did.
type Rebuilt struct {
	// Position is where replication resumed.
	Position string
	// Kept is the copy of the data directory as it was before: the copy
	// taken before pg_rewind, or the old directory a base backup replaced.
	Kept string
	// Discarded says what the old data had past the primary's history
	// (Fork's reason), "" when nothing or unknown.
	Discarded string
}

// resync rebuilds this standby from the primary at host:port (or the
// known one): pg_rewind when only the timelines diverged, else (or when
// rewinding fails) a fresh pg_basebackup; then it waits until the standby
// streams. A server out of recovery is a primary (or a former one): its
// data may be the only copy of what was written on it, so it is rebuilt
// only when forced; one that cannot be read is not judged and refused the
// same way.
func (p *PgSQL) resync(ctx context.Context, host string, port int, force bool) (Rebuilt, error) {
	if p.Host == nil {
		return Rebuilt{}, fmt.Errorf("pgsql resync of %s: %w: run on the standby's host with pgsql.dataDir, or by hand: %s", p.Local.Addr(), ErrNotLocal, ResyncCommandPgSQL)
	}
	host, port, err := p.primaryAddr(host, port)
	if err != nil {
		return Rebuilt{}, err
	}
	s, err := p.Local.Read(ctx)
	switch {
	case err != nil && !force:
		return Rebuilt{}, fmt.Errorf("resync of pgsql %s refused: cannot tell whether it is a primary: %w; send the resync with force to rebuild it anyway (its data directory is kept)", p.Local.Addr(), err)
	case err == nil && !s.InRecovery && !force:
		return Rebuilt{}, fmt.Errorf("resync of pgsql %s refused: %w: it is out of recovery at %s on timeline %d, so its data may be the only copy of what was written on it; send the resync with force to rebuild it anyway (its data directory is kept)",
			p.Local.Addr(), ErrIsPrimary, s.Current, s.Timeline)
	}
	// A standby whose WAL is gone from the primary gains nothing from
	// pg_rewind ("no rewind required", then the same missing segment).
	walGone := false
	if err == nil && s.InRecovery {
		if c, err := p.Local.WithAddr(ctx, host, port, p.TLS); err == nil {
			if pr, err := c.ReadPrimary(ctx, max(s.Receive, s.Replay)); err == nil && pr.SegmentGone {
				walGone = true
			}
			c.Close()
		}
	}
	return p.rebuild(ctx, host, port, !walGone)
}

// discarded says what the local server has past the history of the
// primary at host:port, read before a rebuild throws it away.
func (p *PgSQL) discarded(ctx context.Context, host string, port int) string {
	s, err := p.Local.Read(ctx)
	if err != nil {
		return ""
	}
	c, err := p.Local.WithAddr(ctx, host, port, p.TLS)
	if err != nil {
		return ""
	}
	defer c.Close()
	pr, err := c.ReadPrimary(ctx, 0)
	if err != nil {
		return ""
	}
	if forked, why := pgrepl.Fork(s.Timeline, s.Current, pr.Timeline, pr.History); forked {
		return why
	}
	return ""
}

// rebuild makes the local server a standby of host:port. The data it
// replaces is kept: copied aside before pg_rewind, or the old directory
// put aside by the base backup (not both: after a failed rewind the copy
// taken before it is the one worth keeping).
func (p *PgSQL) rebuild(ctx context.Context, host string, port int, tryRewind bool) (Rebuilt, error) {
	var res Rebuilt
	if p.Host == nil {
		return res, fmt.Errorf("%s: %w", p.Local.Addr(), ErrNotLocal)
	}
	opts, err := p.Host.Options()
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	res.Discarded = p.discarded(ctx, host, port)
	repl := p.replConninfo(host, port)
	log := p.logger().With("primary", net.JoinHostPort(host, strconv.Itoa(port)), "dataDir", p.Host.DataDir)
	if tryRewind {
		kept, err := p.rewind(ctx, opts, host, port, repl)
		res.Kept = kept
		if err == nil {
			log.Info("rewound to a standby", "kept", kept)
			res.Position, err = p.Local.Position(ctx)
			return res, err
		}
		log.Warn("pg_rewind failed, copying the primary in full", "err", err, "kept", kept)
	}
	if err := p.Host.BaseBackup(ctx, p.replConninfoNoPass(host, port), p.ReplPassword); err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	if err := p.Host.Stop(ctx); err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
	}
	old, err := p.Host.Swap(p.now())
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Local.Addr(), err)
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
			return res, fmt.Errorf("rebuild %s: %w; restoring %s failed too: %v", p.Local.Addr(), err, old, rerr)
		}
		_ = p.Host.Start(ctx, opts)
		return res, fmt.Errorf("rebuild %s from a base backup: %w (old data directory restored)", p.Local.Addr(), err)
	}
	if res.Kept == "" {
		res.Kept = old
	} else if err := os.RemoveAll(old); err != nil {
		// The rewind attempt left this one half rewritten; the copy taken
		// before it is kept.
		log.Warn("remove the data directory a failed rewind left", "dir", old, "err", err)
	}
	log.Info("rebuilt from a base backup", "kept", res.Kept)
	res.Position, err = p.Local.Position(ctx)
	return res, err
}

// rewind turns the local server into a standby of host:port with
// pg_rewind, after copying its data directory aside; it returns the copy
// (also when the rewind then fails).
func (p *PgSQL) rewind(ctx context.Context, opts, host string, port int, repl string) (string, error) {
	// pg_rewind reads the source's timeline from its control file, which a
	// just-promoted server updates only at its next checkpoint: without one
	// it sees "the same timeline", rewinds nothing, and the server then
	// waits forever for WAL of a timeline forked before its own position.
	src, err := p.Local.WithAddr(ctx, host, port, p.TLS)
	if err != nil {
		return "", err
	}
	_, err = src.Pool().Exec(ctx, "CHECKPOINT")
	src.Close()
	if err != nil {
		return "", fmt.Errorf("checkpoint on the new primary %s:%d before pg_rewind: %w", host, port, err)
	}
	if err := p.Host.Stop(ctx); err != nil {
		return "", err
	}
	kept, err := p.Host.Keep(ctx, p.now())
	if err != nil {
		// Nothing is rewritten without a copy; the server comes back as it
		// was.
		if serr := p.Host.Start(ctx, opts); serr != nil {
			return "", fmt.Errorf("%w; restarting it unchanged failed too: %v", err, serr)
		}
		return "", err
	}
	source, password := p.Local.AdminConninfo(host, port, p.TLS)
	out, err := p.Host.Rewind(ctx, source, password)
	if err != nil {
		return kept, err
	}
	p.logger().Info("pg_rewind", "output", lastLine(out))
	if err := p.Host.WriteStandby(repl); err != nil {
		return kept, err
	}
	if err := p.Host.Start(ctx, opts); err != nil {
		return kept, err
	}
	return kept, p.waitStreaming(ctx, port)
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
func (p *PgSQL) follow(ctx context.Context, host string, port int) (Rebuilt, error) {
	s, err := p.Local.Read(ctx)
	if err != nil {
		return Rebuilt{}, err
	}
	if s.InRecovery {
		if err := p.Local.Reconnect(ctx, p.replConninfo(host, port), true); err != nil {
			return Rebuilt{}, err
		}
		pos, err := p.Local.Position(ctx)
		return Rebuilt{Position: pos}, err
	}
	if p.Host == nil {
		return Rebuilt{}, fmt.Errorf("%s is a primary: returning it to standby of %s:%d needs its data directory: %w", p.Local.Addr(), host, port, ErrNotLocal)
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
			var r Rebuilt
			r, err = p.follow(ctx, cmd.PrimaryHost, cmd.PrimaryPort)
			done.Position, done.Kept, done.Discarded = r.Position, r.Kept, r.Discarded
		} else {
			done.Position, err = p.Local.Position(ctx)
		}
	case "repoint":
		if cmd.PrimaryHost == "" || cmd.PrimaryPort == 0 {
			return done, fmt.Errorf("repoint needs primaryHost and primaryPort")
		}
		var r Rebuilt
		r, err = p.follow(ctx, cmd.PrimaryHost, cmd.PrimaryPort)
		done.Position, done.Kept, done.Discarded = r.Position, r.Kept, r.Discarded
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
		var r Rebuilt
		r, err = p.resync(ctx, cmd.PrimaryHost, cmd.PrimaryPort, cmd.Force)
		done.Position, done.Kept, done.Discarded = r.Position, r.Kept, r.Discarded
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
