package events

import "fmt"

// Role is a site's disaster-recovery role.
type Role string

// The roles of seed 000: a pair has one active and one standby site; a site
// outside any pair is standalone.
const (
	RoleActive     Role = "active"
	RoleStandby    Role = "standby"
	RoleStandalone Role = "standalone"
)

// Epoch is the fencing epoch. Every role change to active raises it; a site
// that learns of a higher epoch than its own while active demotes itself.
type Epoch uint64

// Database names a replicated database kind.
type Database string

// The databases drwatch watches.
const (
	MySQL Database = "mysql"
	PgSQL Database = "pgsql"
)

// Behind says how far a replica of db is behind its primary, in db's own
// unit (DatabaseCommandDone.LagBytes and LagTransactions are not
// comparable): "N transactions behind" for MySQL, "N bytes behind" (of
// WAL) for PostgreSQL.
func (db Database) Behind(lagBytes, lagTransactions int64) string {
	if db == MySQL {
		return fmt.Sprintf("%d transactions behind", lagTransactions)
	}
	return fmt.Sprintf("%d bytes behind", lagBytes)
}
