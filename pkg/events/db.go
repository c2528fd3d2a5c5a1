package events

// ReplicationBroken says a replication check failed. Check names what was
// checked; Error is the server's own text.
type ReplicationBroken struct {
	Database Database `json:"database" validate:"oneof=mysql pgsql"`
	// Scope is "site" for replication inside a site, "cross" between sites.
	Scope  string `json:"scope" validate:"oneof=site cross"`
	Server string `json:"server" validate:"required,max=256"`
	Check  string `json:"check" validate:"required,max=128"`
	Error  string `json:"error" validate:"max=4096"`
	// Attempts made to repair so far; Repairable false means drwatch will
	// not try (or stopped trying) and an operator must act.
	Attempts   int  `json:"attempts" validate:"gte=0"`
	Repairable bool `json:"repairable"`
}

// EventType implements Event.
func (ReplicationBroken) EventType() Type { return "ReplicationBroken" }

// ReplicationRepaired says a broken check passes again.
type ReplicationRepaired struct {
	Database Database `json:"database" validate:"oneof=mysql pgsql"`
	Scope    string   `json:"scope" validate:"oneof=site cross"`
	Server   string   `json:"server" validate:"required,max=256"`
	Check    string   `json:"check" validate:"required,max=128"`
	Attempts int      `json:"attempts" validate:"gte=0"`
}

// EventType implements Event.
func (ReplicationRepaired) EventType() Type { return "ReplicationRepaired" }

// ReplicationLagHigh says replication lag crossed its configured limit.
type ReplicationLagHigh struct {
	Database         Database `json:"database" validate:"oneof=mysql pgsql"`
	Server           string   `json:"server" validate:"required,max=256"`
	LagSeconds       float64  `json:"lagSeconds" validate:"gte=0"`
	LagBytes         int64    `json:"lagBytes" validate:"gte=0"`
	ThresholdSeconds float64  `json:"thresholdSeconds" validate:"gte=0"`
	ThresholdBytes   int64    `json:"thresholdBytes" validate:"gte=0"`
}

// EventType implements Event.
func (ReplicationLagHigh) EventType() Type { return "ReplicationLagHigh" }

// ReplicationLagRecovered says lag is back under its limit.
type ReplicationLagRecovered struct {
	Database   Database `json:"database" validate:"oneof=mysql pgsql"`
	Server     string   `json:"server" validate:"required,max=256"`
	LagSeconds float64  `json:"lagSeconds" validate:"gte=0"`
	LagBytes   int64    `json:"lagBytes" validate:"gte=0"`
}

// EventType implements Event.
func (ReplicationLagRecovered) EventType() Type { return "ReplicationLagRecovered" }

// ReplicationDiverged says both sides accepted writes the other lacks
// (errant GTIDs, a PostgreSQL timeline fork). Replication is not resumed
// automatically; ResyncCommand is what an operator runs.
type ReplicationDiverged struct {
	Database      Database `json:"database" validate:"oneof=mysql pgsql"`
	Server        string   `json:"server" validate:"required,max=256"`
	Details       []string `json:"details" validate:"required,min=1"`
	ResyncCommand string   `json:"resyncCommand" validate:"required,max=1024"`
}

// EventType implements Event.
func (ReplicationDiverged) EventType() Type { return "ReplicationDiverged" }

// DatabaseCommand asks a site's dbmonitor to act. It is answered with
// DatabaseCommandDone carrying this event's id as causation id.
type DatabaseCommand struct {
	Command  string   `json:"command" validate:"oneof=promote demote repoint position resync"`
	Database Database `json:"database" validate:"oneof=mysql pgsql"`
	// Target site whose dbmonitor must act.
	Target SiteID `json:"target" validate:"required,sitename"`
	// PrimaryHost and PrimaryPort name the new primary for repoint/resync.
	PrimaryHost string `json:"primaryHost,omitempty" validate:"max=256"`
	PrimaryPort int    `json:"primaryPort,omitempty" validate:"gte=0,lte=65535"`
	FailoverID  string `json:"failoverId,omitempty" validate:"max=64"`
	// Force, on promote, makes the promotion go on when the replica could
	// not apply everything it received (those transactions are discarded
	// and named in the answer's Error, with OK true). On resync it lets the
	// copy replace the data of the active site's server or of a server that
	// is a primary, which dbmonitor otherwise refuses.
	Force bool `json:"force,omitempty"`
	// FollowEpoch, on a repoint of a standby's server at the active peer
	// outside any failover, is the peer's active epoch it follows; the
	// answer carries it back.
	FollowEpoch Epoch `json:"followEpoch,omitempty"`
}

// EventType implements Event.
func (DatabaseCommand) EventType() Type { return "DatabaseCommand" }

// DatabaseCommandDone answers a DatabaseCommand.
type DatabaseCommandDone struct {
	Command  string   `json:"command" validate:"oneof=promote demote repoint position resync"`
	Database Database `json:"database" validate:"oneof=mysql pgsql"`
	OK       bool     `json:"ok"`
	// Error says why OK is false; with OK true it is a warning (a forced
	// promote names the received transactions it discarded).
	Error string `json:"error,omitempty" validate:"max=4096"`
	// Position is the GTID set (MySQL) or LSN (PostgreSQL) after the command.
	Position string `json:"position,omitempty" validate:"max=4096"`
	// FollowEpoch echoes the command's.
	FollowEpoch Epoch `json:"followEpoch,omitempty"`
	// LagBytes is how far a PostgreSQL standby's replay LSN is behind its
	// primary's current LSN, in bytes of WAL. Always 0 for MySQL.
	//
	// For the orchestrator's in-sync guard: a PostgreSQL standby is in sync
	// when LagBytes is 0 (or under failover.maxLagBytes); a MariaDB/MySQL
	// replica when LagTransactions is 0. The two are different units and
	// must not be compared with the same threshold.
	LagBytes int64 `json:"lagBytes" validate:"gte=0"`
	// LagTransactions is how many transactions a MariaDB/MySQL replica's
	// gtid_current_pos is behind its primary's, summed over GTID domains
	// (MariaDB has no byte offset that means the same on both servers).
	// Always 0 for PostgreSQL. Only filled by the position command and only
	// when the primary was readable.
	LagTransactions int64 `json:"lagTransactions,omitempty" validate:"gte=0"`
	// FollowsNone, on a position answer, says the server replicates from
	// no primary: a PostgreSQL server out of recovery, a MariaDB/MySQL
	// server with no replica connection. On a standby site that is a
	// former primary never made a replica again: it lacks what the active
	// site wrote since, and the orchestrator does not promote it unless
	// the failover is forced.
	FollowsNone bool   `json:"followsNone,omitempty"`
	FailoverID  string `json:"failoverId,omitempty" validate:"max=64"`
	// Kept, on a command that replaced the server's data (resync, a
	// PostgreSQL return to standby), is where the copy of the data it
	// replaced is: a dump file (MariaDB/MySQL) or the old data directory
	// put aside (PostgreSQL), on the database's host. Empty when nothing
	// was replaced.
	Kept string `json:"kept,omitempty" validate:"max=1024"`
	// Discarded names what the replaced data had that the primary lacks:
	// errant GTIDs (MariaDB/MySQL) or the WAL past the fork point
	// (PostgreSQL). Empty when nothing was discarded or it is unknown.
	Discarded string `json:"discarded,omitempty" validate:"max=4096"`
}

// EventType implements Event.
func (DatabaseCommandDone) EventType() Type { return "DatabaseCommandDone" }
