package pgrepl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadDSN marks a DSN that does not parse.
var ErrBadDSN = errors.New("bad pgsql dsn")

// Client talks to one PostgreSQL server.
type Client struct {
	pool *pgxpool.Pool
	cfg  *pgxpool.Config
}

// Open parses dsn and prepares a pool without connecting.
func Open(ctx context.Context, dsn string) (*Client, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (want postgres://user:password@host:port/db)", ErrBadDSN, err)
	}
	cfg.MaxConns = 3
	cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	return &Client{pool: pool, cfg: cfg}, nil
}

// Close releases the pool.
func (c *Client) Close() { c.pool.Close() }

// Addr is host:port.
func (c *Client) Addr() string {
	return fmt.Sprintf("%s:%d", c.cfg.ConnConfig.Host, c.cfg.ConnConfig.Port)
}

// Pool exposes the pool to tests.
func (c *Client) Pool() *pgxpool.Pool { return c.pool }

// TLSFiles name the certificate files a connection verifies the server
// with (paths on this host); an empty CA means no TLS.
type TLSFiles struct{ CA, Cert, Key string }

// Conninfo is the libpq TLS part of a conninfo: sslmode=verify-full (the
// certificate must chain to CA and name the host dialled) with the files,
// or sslmode=disable without a CA.
func (f TLSFiles) Conninfo() string {
	if f.CA == "" {
		return "sslmode=disable"
	}
	s := "sslmode=verify-full sslrootcert=" + quoteKV(f.CA)
	if f.Cert != "" {
		s += " sslcert=" + quoteKV(f.Cert) + " sslkey=" + quoteKV(f.Key)
	}
	return s
}

// WithAddr returns a client for host:port with the same credentials,
// verifying the server's certificate with tls when its CA is set.
func (c *Client) WithAddr(ctx context.Context, host string, port int, tls TLSFiles) (*Client, error) {
	cc := c.cfg.ConnConfig
	dsn := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s %s connect_timeout=3",
		quoteKV(host), port, quoteKV(cc.User), quoteKV(cc.Password), quoteKV(cc.Database), tls.Conninfo())
	return Open(ctx, dsn)
}

// AdminConninfo is a libpq conninfo for host:port with this client's user
// and database and tls's verification, and its password apart:
// pg_rewind's --source-server, whose password must not be on the command
// line.
func (c *Client) AdminConninfo(host string, port int, tls TLSFiles) (conninfo, password string) {
	cc := c.cfg.ConnConfig
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s %s connect_timeout=5",
		quoteKV(host), port, quoteKV(cc.User), quoteKV(cc.Database), tls.Conninfo()), cc.Password
}

// Read takes one reading of the local server.
func (c *Client) Read(ctx context.Context) (Standby, error) {
	var s Standby
	var cur, recv, replay string
	// The timeline: a primary's from the name of its current WAL file (its
	// control file says the new one only after the first checkpoint that
	// follows a promotion); a standby's from its last restartpoint, and
	// below from the WAL receiver, which knows the newer one it streams.
	err := c.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery()
    THEN (SELECT timeline_id FROM pg_control_checkpoint())
    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END,
  CASE WHEN pg_is_in_recovery() THEN '0/0' ELSE pg_current_wal_lsn()::text END,
  coalesce(pg_last_wal_receive_lsn()::text, '0/0'), coalesce(pg_last_wal_replay_lsn()::text, '0/0'),
  CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8`).
		Scan(&s.InRecovery, &s.Timeline, &cur, &recv, &replay, &s.LagSec)
	if err != nil {
		return s, fmt.Errorf("read recovery state of %s: %w", c.Addr(), err)
	}
	if s.Current, err = ParseLSN(cur); err != nil {
		return s, err
	}
	if s.Receive, err = ParseLSN(recv); err != nil {
		return s, err
	}
	if s.Replay, err = ParseLSN(replay); err != nil {
		return s, err
	}
	if s.InRecovery {
		s.Current = max(s.Receive, s.Replay)
	}
	var r Receiver
	var tli int64
	err = c.pool.QueryRow(ctx, `SELECT pid, status, coalesce(sender_host, ''), coalesce(sender_port, 0), coalesce(received_tli, 0)::bigint FROM pg_stat_wal_receiver`).
		Scan(&r.PID, &r.Status, &r.SenderHost, &r.SenderPort, &tli)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return s, fmt.Errorf("read pg_stat_wal_receiver of %s: %w", c.Addr(), err)
	default:
		s.Receiver = &r
		if uint32(tli) > s.Timeline {
			s.Timeline = uint32(tli)
		}
	}
	return s, nil
}

// ReadPrimary reads the primary's position, timeline and history, and
// whether the WAL segment holding need is still in its pg_wal.
func (c *Client) ReadPrimary(ctx context.Context, need LSN) (Primary, error) {
	var p Primary
	var cur string
	err := c.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint`).Scan(&cur, &p.Timeline)
	if err != nil {
		return p, fmt.Errorf("read primary %s: %w", c.Addr(), err)
	}
	if p.Current, err = ParseLSN(cur); err != nil {
		return p, err
	}
	if p.Timeline > 1 {
		var h string
		err := c.pool.QueryRow(ctx, `SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex($1::int)), 8, '0') || '.history')`, int(p.Timeline)).Scan(&h)
		if err != nil {
			return p, fmt.Errorf("read timeline history of %s: %w", c.Addr(), err)
		}
		if p.History, err = ParseHistory(h); err != nil {
			return p, err
		}
	}
	err = c.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_replication r
  LEFT JOIN pg_stat_ssl s USING (pid) WHERE r.state = 'streaming'`).Scan(&p.Streaming, &p.SSL)
	if err != nil {
		return p, fmt.Errorf("read WAL senders of %s: %w", c.Addr(), err)
	}
	if need > 0 {
		err := c.pool.QueryRow(ctx, `SELECT w, NOT EXISTS (SELECT 1 FROM pg_ls_waldir() WHERE name = w) FROM pg_walfile_name($1::pg_lsn) AS w`, need.String()).
			Scan(&p.Segment, &p.SegmentGone)
		if err != nil {
			return p, fmt.Errorf("look up WAL segment on %s: %w", c.Addr(), err)
		}
	}
	return p, nil
}

// Reconnect restarts the WAL receiver: re-reads primary_conninfo and, when
// a receiver is stuck (or always, with force: a streaming one keeps its
// old connection settings), ends it so the startup process starts a new
// one.
func (c *Client) Reconnect(ctx context.Context, conninfo string, force bool) error {
	if conninfo != "" {
		if _, err := c.pool.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = "+quoteLit(conninfo)); err != nil {
			return fmt.Errorf("set primary_conninfo on %s: %w", c.Addr(), err)
		}
	}
	if _, err := c.pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload %s: %w", c.Addr(), err)
	}
	if _, err := c.pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_wal_receiver WHERE status <> 'streaming' OR $1", force); err != nil {
		return fmt.Errorf("restart wal receiver on %s: %w", c.Addr(), err)
	}
	return nil
}

// Promote ends recovery (waiting up to 60 s for it) and lifts the fence.
func (c *Client) Promote(ctx context.Context) (string, error) {
	// A server out of recovery is promoted already (a saga resumed after
	// its promote, or a forced takeover of a former primary): pg_promote
	// would fail with "recovery is not in progress"; only unfence it.
	var standby bool
	if err := c.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return "", fmt.Errorf("promote %s: %w", c.Addr(), err)
	}
	if standby {
		var ok bool
		if err := c.pool.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
			return "", fmt.Errorf("pg_promote on %s: %w", c.Addr(), err)
		}
		if !ok {
			return "", fmt.Errorf("pg_promote on %s: not promoted within 60 s", c.Addr())
		}
	}
	if _, err := c.pool.Exec(ctx, "ALTER SYSTEM RESET default_transaction_read_only"); err != nil {
		return "", fmt.Errorf("unfence %s: %w", c.Addr(), err)
	}
	if _, err := c.pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return "", err
	}
	return c.Position(ctx)
}

// Fence refuses writes: new transactions default to read-only and the
// sessions that could write are ended. A real demotion to standby needs
// pg_rewind (or pg_basebackup) and a restart with standby.signal, which
// only the host can do; see the README.
func (c *Client) Fence(ctx context.Context) error {
	if _, err := c.pool.Exec(ctx, "ALTER SYSTEM SET default_transaction_read_only = on"); err != nil {
		return fmt.Errorf("fence %s: %w", c.Addr(), err)
	}
	if _, err := c.pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("fence %s: %w", c.Addr(), err)
	}
	// pg_reload_conf only signals the postmaster: a session it forks
	// before re-reading the file starts writable. Wait until a new one
	// is read-only, then end every other session, those included.
	if err := c.waitNewSessionsReadOnly(ctx, fenceReloadTimeout); err != nil {
		return err
	}
	_, err := c.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`)
	if err != nil {
		return fmt.Errorf("end sessions on %s: %w", c.Addr(), err)
	}
	return nil
}

// fenceReloadTimeout bounds the wait for a fence's reload to reach new
// sessions.
const fenceReloadTimeout = 5 * time.Second

// waitNewSessionsReadOnly opens fresh sessions until one starts with
// default_transaction_read_only on.
func (c *Client) waitNewSessionsReadOnly(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		conn, err := pgx.ConnectConfig(ctx, c.cfg.ConnConfig.Copy())
		if err == nil {
			var v string
			err = conn.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&v)
			_ = conn.Close(ctx)
			if err == nil && v == "on" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("a new session has default_transaction_read_only %s", v)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("fence %s: new sessions not read-only within %s after the reload: %w", c.Addr(), limit, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Position is the current LSN (primary) or the replayed LSN (standby).
func (c *Client) Position(ctx context.Context) (string, error) {
	var p string
	err := c.pool.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text`).Scan(&p)
	if err != nil {
		return "", fmt.Errorf("position of %s: %w", c.Addr(), err)
	}
	return p, nil
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteKV(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
