package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// dbCmd sends this site's dbmonitor a command and prints its answer:
// `drwatch db resync --database mysql` is what ReplicationDiverged and a
// purged log tell an operator to run.
func dbCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: db takes resync or position, e.g. drwatch db resync --database mysql", errUsage)
	}
	command := args[0]
	if command != "resync" && command != "position" {
		return fmt.Errorf("%w: db %q: want resync or position", errUsage, command)
	}
	fs := newFlags("db "+command, stderr)
	r := remoteFlags(fs)
	db := fs.String("database", "", "mysql or pgsql")
	host := fs.String("primary-host", "", "resync: the primary to copy from (default: the one dbmonitor knows)")
	port := fs.Int("primary-port", 0, "resync: the primary's port")
	force := fs.Bool("force", false, "resync: replace the data even on the active site or on a server that is a primary (a copy is kept first)")
	wait := fs.Duration("timeout", 10*time.Minute, "how long to wait for dbmonitor's answer (0: do not wait)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch events.Database(*db) {
	case events.MySQL, events.PgSQL:
	default:
		return fmt.Errorf("%w: --database %q: want mysql or pgsql", errUsage, *db)
	}
	if *force && command != "resync" {
		return fmt.Errorf("%w: --force applies to resync only", errUsage)
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("%w: --primary-port %d: want 1-65535", errUsage, *port)
	}
	cfg, c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	from, err := c.lastSeq(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the log position: %v", errUnreachable, err)
	}
	site := events.SiteID(cfg.Site.Name)
	cmd := events.DatabaseCommand{Command: command, Database: events.Database(*db), Target: site, PrimaryHost: *host, PrimaryPort: *port, Force: *force}
	env, err := c.bus.Publish(ctx, cmd, nil)
	if err != nil {
		return fmt.Errorf("record the %s command: %w", command, err)
	}
	fmt.Fprintf(stdout, "requested: %s of %s on site %s (command %s)\n", command, *db, site, env.ID)
	if *wait == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	answer := make(chan events.DatabaseCommandDone, 1)
	followErr := make(chan error, 1)
	go func() {
		followErr <- c.bus.Follow(wctx, from+1, []string{events.SiteTypeFilter(site, "DatabaseCommandDone")}, func(_ uint64, got *events.Envelope) {
			if got.CausationID != env.ID {
				return
			}
			if done, err := events.DecodeInto[events.DatabaseCommandDone](got); err == nil {
				select {
				case answer <- done:
				default:
				}
			}
		})
	}()
	select {
	case done := <-answer:
		if !done.OK {
			if done.Kept != "" {
				fmt.Fprintf(stdout, "the data it replaced is kept in %s\n", done.Kept)
			}
			return fmt.Errorf("%s of %s failed on site %s: %s", command, *db, site, done.Error)
		}
		fmt.Fprintf(stdout, "%s of %s done", command, *db)
		if done.Position != "" {
			fmt.Fprintf(stdout, ": position %s", done.Position)
		}
		if command == "position" {
			fmt.Fprintf(stdout, ", %s the primary", events.Database(*db).Behind(done.LagBytes, done.LagTransactions))
			if done.FollowsNone {
				fmt.Fprint(stdout, ", follows no primary (a takeover will not promote it unless forced)")
			}
		}
		fmt.Fprintln(stdout)
		if done.Kept != "" {
			fmt.Fprintf(stdout, "the data it replaced is kept in %s\n", done.Kept)
		}
		if done.Discarded != "" {
			fmt.Fprintf(stdout, "discarded: %s\n", done.Discarded)
		}
		return nil
	case err := <-followErr:
		if err != nil && wctx.Err() == nil {
			return fmt.Errorf("%w: following the log: %v", errUnreachable, err)
		}
	case <-wctx.Done():
	}
	if errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: command %s is recorded; no answer from dbmonitor of site %s within %s", errTimeout, env.ID, site, *wait)
	}
	return ctx.Err()
}
