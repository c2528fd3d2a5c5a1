package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // MySQL/MariaDB driver for init's users
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver for init's users
)

// createUsers runs init's SQL through the given admin DSNs. Statements run
// one by one so an error names the one that failed.
func createUsers(ctx context.Context, mysqlDSN, pgsqlDSN, mysqlSQL, pgSQL string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if mysqlDSN != "" {
		if err := execSQL(ctx, "mysql", mysqlDSN, splitSQL(mysqlSQL, false)); err != nil {
			return fmt.Errorf("create MySQL users: %w", err)
		}
		fmt.Fprintln(stdout, "created the MySQL replication and monitoring users")
	}
	if pgsqlDSN != "" {
		if err := execSQL(ctx, "pgx", pgsqlDSN, splitSQL(pgSQL, true)); err != nil {
			return fmt.Errorf("create PostgreSQL users: %w", err)
		}
		fmt.Fprintln(stdout, "created the PostgreSQL replication and monitoring users (add the pg_hba.conf lines of sql/pgsql-users.sql)")
	}
	return nil
}

func execSQL(ctx context.Context, driver, dsn string, stmts []string) error {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", firstLine(st), err)
		}
	}
	return nil
}

// splitSQL splits init's own SQL (no quotes hold a ';' by construction)
// into statements, dropping comments. The PostgreSQL DO block is one
// statement ending at "END $$;".
func splitSQL(s string, pg bool) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		inDo := pg && strings.HasPrefix(strings.TrimSpace(cur.String()), "DO $$") && !strings.HasSuffix(t, "END $$;")
		if strings.HasSuffix(t, ";") && !inDo {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
