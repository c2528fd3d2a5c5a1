// Package mysqlrepl checks and drives MariaDB/MySQL GTID replication: it
// parses SHOW ALL SLAVES STATUS and GTID positions into findings (pure) and
// runs the statements that repair, promote, fence, re-point and resync.
package mysqlrepl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// ErrPurged is MariaDB's error 1236: the primary no longer has the binlog
// events the replica asks for.
const ErrPurged = 1236

// Replica is one connection of SHOW ALL SLAVES STATUS.
type Replica struct {
	Connection    string
	MasterHost    string
	MasterPort    int
	IORunning     string
	SQLRunning    string
	LastIOErrno   int
	LastIOError   string
	LastSQLErrno  int
	LastSQLError  string
	SecondsBehind int64
	// SecondsKnown is false when Seconds_Behind_Master is NULL.
	SecondsKnown bool
	GtidIOPos    string
	UsingGtid    string
	// SSLAllowed is Master_SSL_Allowed: "Yes" when the connection to the
	// primary is made over TLS (MASTER_SSL=1; it fails rather than fall
	// back to plain).
	SSLAllowed string
}

// ParseReplica reads one row of SHOW [ALL] SLAVES STATUS given as column
// name to value (NULL as "").
func ParseReplica(row map[string]string) (Replica, error) {
	r := Replica{
		Connection:   row["Connection_name"],
		MasterHost:   row["Master_Host"],
		IORunning:    row["Slave_IO_Running"],
		SQLRunning:   row["Slave_SQL_Running"],
		LastIOError:  row["Last_IO_Error"],
		LastSQLError: row["Last_SQL_Error"],
		GtidIOPos:    row["Gtid_IO_Pos"],
		UsingGtid:    row["Using_Gtid"],
		SSLAllowed:   row["Master_SSL_Allowed"],
	}
	if _, ok := row["Slave_IO_Running"]; !ok {
		return r, fmt.Errorf("slave status row has no Slave_IO_Running column")
	}
	var err error
	ints := []struct {
		col string
		dst *int
	}{{"Master_Port", &r.MasterPort}, {"Last_IO_Errno", &r.LastIOErrno}, {"Last_SQL_Errno", &r.LastSQLErrno}}
	for _, c := range ints {
		if v := row[c.col]; v != "" {
			if *c.dst, err = strconv.Atoi(v); err != nil {
				return r, fmt.Errorf("slave status %s=%q: %w", c.col, v, err)
			}
		}
	}
	if v := row["Seconds_Behind_Master"]; v != "" {
		if r.SecondsBehind, err = strconv.ParseInt(v, 10, 64); err != nil {
			return r, fmt.Errorf("slave status Seconds_Behind_Master=%q: %w", v, err)
		}
		r.SecondsKnown = true
	}
	return r, nil
}

// GTID is one MariaDB global transaction id, domain-server-seq.
type GTID struct {
	Domain, Server uint32
	Seq            uint64
}

func (g GTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// ParseGTIDList reads "0-1-10,1-2-3" (gtid_binlog_state, gtid_slave_pos...).
func ParseGTIDList(s string) ([]GTID, error) {
	var out []GTID
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("gtid %q is not domain-server-seq", part)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		sv, err2 := strconv.ParseUint(f[1], 10, 32)
		seq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("gtid %q is not domain-server-seq of numbers", part)
		}
		out = append(out, GTID{uint32(d), uint32(sv), seq})
	}
	return out, nil
}

// Errant returns the GTIDs of the replica's binlog state that the primary's
// binlog state does not cover: transactions written on the replica (or on a
// primary it followed) that the primary never saw. gtid_binlog_state keeps
// the last seq per (domain, server), so an entry is covered when the primary
// holds the same pair at the same or a later seq.
func Errant(replicaState, primaryState []GTID) []GTID {
	type key struct{ d, s uint32 }
	have := map[key]uint64{}
	for _, g := range primaryState {
		have[key{g.Domain, g.Server}] = max(have[key{g.Domain, g.Server}], g.Seq)
	}
	var out []GTID
	for _, g := range replicaState {
		if seq, ok := have[key{g.Domain, g.Server}]; !ok || seq < g.Seq {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b GTID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Server is what one check round read from a server.
type Server struct {
	Replicas     []Replica
	BinlogState  string
	BinlogPos    string
	SlavePos     string
	ReadOnly     bool
	PrimaryState string
	// PrimaryErr says why the primary could not be read ("" when it was
	// read or not tried).
	PrimaryErr string
}

// Expect says what the server should be.
type Expect struct {
	// Replica is true on the standby site: the server must replicate.
	Replica bool
	// PeerHosts are the peer site's addresses; a primary among them makes
	// the scope "cross".
	PeerHosts []string
	// ResyncCommand is the operator command named in events.
	ResyncCommand string
	// RequireTLS (mysql.tls set) makes a plain replication link a failing
	// "tls" check.
	RequireTLS bool
}

// Evaluate turns one round's reading into failing checks. It returns the
// lag (seconds) when the replica reports it.
func Evaluate(s Server, e Expect) (findings []watch.Finding, lagSeconds float64, lagKnown bool) {
	if !e.Replica {
		return nil, 0, false
	}
	if len(s.Replicas) == 0 {
		return []watch.Finding{{Check: "replica", Error: "server is not a replica: SHOW ALL SLAVES STATUS is empty"}}, 0, false
	}
	if s.PrimaryState != "" {
		rep, err1 := ParseGTIDList(s.BinlogState)
		pri, err2 := ParseGTIDList(s.PrimaryState)
		if err1 == nil && err2 == nil {
			if errant := Errant(rep, pri); len(errant) > 0 {
				details := make([]string, 0, len(errant)+1)
				for _, g := range errant {
					details = append(details, "errant GTID "+g.String()+" on the replica is not in the primary's gtid_binlog_state")
				}
				details = append(details, "primary gtid_binlog_state="+s.PrimaryState+", replica gtid_binlog_state="+s.BinlogState)
				return []watch.Finding{{Check: "divergence", Error: "errant GTIDs", Diverged: details, ResyncCommand: e.ResyncCommand}}, 0, false
			}
		}
	}
	for _, r := range s.Replicas {
		name := func(c string) string {
			if r.Connection == "" {
				return c
			}
			return r.Connection + "/" + c
		}
		if r.MasterHost == "" {
			findings = append(findings, watch.Finding{Check: name("primary_host"), Error: "primary host unknown: Master_Host is empty"})
			continue
		}
		if e.RequireTLS && r.SSLAllowed != "Yes" {
			findings = append(findings, watch.Finding{Check: name("tls"), Repairable: true,
				Error: fmt.Sprintf("replication from %s:%d is not encrypted: Master_SSL_Allowed=%s while mysql.tls requires TLS", r.MasterHost, r.MasterPort, r.SSLAllowed)})
		}
		if r.IORunning != "Yes" {
			f := watch.Finding{Check: name("io_thread"), Repairable: true,
				Error: fmt.Sprintf("Slave_IO_Running=%s Last_IO_Errno=%d: %s", r.IORunning, r.LastIOErrno, r.LastIOError)}
			if r.LastIOErrno == ErrPurged {
				f.NeedsResync, f.ResyncCommand = true, e.ResyncCommand
			}
			findings = append(findings, f)
		}
		if r.SQLRunning != "Yes" {
			findings = append(findings, watch.Finding{Check: name("sql_thread"), Repairable: true,
				Error: fmt.Sprintf("Slave_SQL_Running=%s Last_SQL_Errno=%d: %s", r.SQLRunning, r.LastSQLErrno, r.LastSQLError)})
		}
		if r.SecondsKnown {
			lagSeconds, lagKnown = max(lagSeconds, float64(r.SecondsBehind)), true
		}
	}
	return findings, lagSeconds, lagKnown
}

// Encrypted says whether every replica connection uses TLS: "yes", "no",
// or "" when the server replicates from nothing.
func Encrypted(s Server) string {
	if len(s.Replicas) == 0 {
		return ""
	}
	for _, r := range s.Replicas {
		if r.SSLAllowed != "Yes" {
			return "no"
		}
	}
	return "yes"
}

// Scope is "cross" when one of the replica's primaries is a peer host.
func Scope(s Server, peerHosts []string) string {
	for _, r := range s.Replicas {
		if slices.Contains(peerHosts, r.MasterHost) {
			return "cross"
		}
	}
	return "site"
}

// Behind counts the transactions of primary (a gtid_current_pos, one entry
// per domain) that mine has not reached, summed over domains.
func Behind(mine, primary []GTID) int64 {
	have := map[uint32]uint64{}
	for _, g := range mine {
		have[g.Domain] = max(have[g.Domain], g.Seq)
	}
	var n int64
	for _, g := range primary {
		if g.Seq > have[g.Domain] {
			n += int64(g.Seq - have[g.Domain])
		}
	}
	return n
}

// latestPerDomain keeps the GTID with the highest seq of each domain, in
// domain order.
func latestPerDomain(gs []GTID) []GTID {
	best := map[uint32]GTID{}
	for _, g := range gs {
		if b, ok := best[g.Domain]; !ok || g.Seq > b.Seq {
			best[g.Domain] = g
		}
	}
	out := make([]GTID, 0, len(best))
	for _, g := range best {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b GTID) int { return int(a.Domain) - int(b.Domain) })
	return out
}

func formatGTIDs(gs []GTID) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// Unapplied compares what a replica received (Gtid_IO_Pos) with what it
// applied (gtid_slave_pos): per domain behind, the last received GTID and
// how many transactions separate them, and the total.
func Unapplied(applied, received []GTID) (missing []string, n int64) {
	have := map[uint32]uint64{}
	for _, g := range applied {
		have[g.Domain] = max(have[g.Domain], g.Seq)
	}
	for _, g := range latestPerDomain(received) {
		if g.Seq > have[g.Domain] {
			d := int64(g.Seq - have[g.Domain])
			missing = append(missing, fmt.Sprintf("%s (%d transaction(s) after seq %d)", g, d, have[g.Domain]))
			n += d
		}
	}
	return missing, n
}
