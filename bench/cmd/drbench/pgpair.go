package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pgPair is a plain PostgreSQL 15 streaming pair, one server per site
// namespace, for the tools that do not build their own (Patroni runs
// initdb and pg_basebackup itself). The harness creates the primary and
// the first standby only; from then on the tool under test promotes,
// fences and turns servers back into standbys.
type pgPair struct{ dir string }

// pgReplUser is the replication role; every address of the subnet is
// trusted, as in Patroni's pg_hba, so its password is never checked.
const (
	pgReplUser = "replication"
	pgReplPass = "repl"
)

// pgConf is appended to the primary's postgresql.conf and so reaches every
// copy of it. Per-site settings (the socket directory) are start options
// instead, which PostgreSQL keeps in postmaster.opts and a rebuild reuses.
const pgConf = `
listen_addresses = '*'
port = 5432
max_connections = 50
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 5
# No slots (drwatch's dbmonitor creates none): WAL kept for a returning
# server to rewind and stream from.
wal_keep_size = 512MB
hot_standby = on
wal_log_hints = on
synchronous_commit = on
`

const pgHBA = `local all all trust
host all all 10.77.0.0/24 trust
host replication all 10.77.0.0/24 trust
`

func (p pgPair) base(s node) string { return filepath.Join(p.dir, "dwpg-"+s.name) }

// data is the site's data directory (pgsql.dataDir).
func (p pgPair) data(s node) string { return filepath.Join(p.base(s), "data") }
func (p pgPair) sock(s node) string { return filepath.Join(p.base(s), "sock") }

// fresh empties the site's directory and gives it to postgres: pg_ctl,
// pg_basebackup and pg_rewind run as postgres and write beside the data
// directory.
func (p pgPair) fresh(ctx context.Context, s node) error {
	if err := os.RemoveAll(p.base(s)); err != nil {
		return err
	}
	if err := os.MkdirAll(p.sock(s), 0o700); err != nil {
		return err
	}
	return p.own(ctx, s)
}

func (p pgPair) own(ctx context.Context, s node) error {
	return run(ctx, "chown", "-R", "postgres:postgres", p.base(s))
}

// initPrimary creates a primary in s with the bench table and the
// replication role, and starts it.
func (p pgPair) initPrimary(ctx context.Context, s node) error {
	if err := p.fresh(ctx, s); err != nil {
		return err
	}
	if out, err := execAs(ctx, s, "postgres", filepath.Join(pgBin, "initdb"), "-D", p.data(s), "-U", "postgres",
		"--auth=trust", "--data-checksums", "-E", "UTF8", "--locale=C"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(out, 3))
	}
	conf, err := os.OpenFile(filepath.Join(p.data(s), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = conf.WriteString(pgConf)
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgresql.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(p.data(s), "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return err
	}
	if err := p.own(ctx, s); err != nil {
		return err
	}
	if err := p.start(ctx, s); err != nil {
		return err
	}
	return p.sql(ctx, s,
		fmt.Sprintf("CREATE ROLE %s WITH REPLICATION LOGIN PASSWORD '%s'", pgReplUser, pgReplPass),
		"ALTER ROLE postgres PASSWORD 'postgres'",
		"CREATE TABLE bench(id bigint PRIMARY KEY)")
}

// cloneStandby makes s a streaming standby of primary (pg_basebackup -R)
// and starts it.
func (p pgPair) cloneStandby(ctx context.Context, s, primary node) error {
	if err := p.fresh(ctx, s); err != nil {
		return err
	}
	if out, err := execAs(ctx, s, "postgres", filepath.Join(pgBin, "pg_basebackup"), "-h", primary.addr, "-U", pgReplUser,
		"-D", p.data(s), "-R", "-X", "stream", "-c", "fast"); err != nil {
		return fmt.Errorf("pg_basebackup of %s into site %s: %w: %s", primary.addr, s.name, err, lastLines(out, 3))
	}
	return p.start(ctx, s)
}

// start starts the site's server as it is on disk (a killed primary
// recovers from its WAL and comes up as a primary again).
func (p pgPair) start(ctx context.Context, s node) error {
	out, err := execAs(ctx, s, "postgres", filepath.Join(pgBin, "pg_ctl"), "-D", p.data(s), "-l", filepath.Join(p.base(s), "server.log"),
		"-w", "-t", "120", "-o", "-k "+p.sock(s), "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start in site %s: %w: %s (server log %s)", s.name, err, lastLines(out, 3), filepath.Join(p.base(s), "server.log"))
	}
	return nil
}

// sql runs statements on the server of s as postgres, from the client.
func (p pgPair) sql(ctx context.Context, s node, stmts ...string) error {
	for _, q := range stmts {
		if err := run(ctx, "ip", "netns", "exec", client.ns(), "psql", p.conninfo(s), "-v", "ON_ERROR_STOP=1", "-qc", q); err != nil {
			return err
		}
	}
	return nil
}

func (p pgPair) conninfo(s node) string {
	return "host=" + s.addr + " user=postgres dbname=postgres connect_timeout=1"
}

// streaming reports whether primary's server is a primary with a WAL
// sender streaming to standby's server.
func (p pgPair) streaming(ctx context.Context, primary, standby node) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	q := fmt.Sprintf("SELECT NOT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_replication WHERE client_addr = '%s' AND state = 'streaming')", standby.addr)
	out, err := output(ctx, "ip", "netns", "exec", client.ns(), "psql", p.conninfo(primary), "-tAc", q)
	return err == nil && strings.TrimSpace(out) == "t"
}

// waitStreaming waits until standby streams from primary.
func (p pgPair) waitStreaming(ctx context.Context, primary, standby node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !p.streaming(ctx, primary, standby) {
		if time.Now().After(deadline) {
			return fmt.Errorf("site %s's PostgreSQL not streaming from site %s's after %s (logs in %s)", standby.name, primary.name, limit, p.base(standby))
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}
