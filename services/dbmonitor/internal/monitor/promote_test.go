package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/watch"
)

// waitReceived waits until the replica's IO thread has received
// everything the primary wrote (Gtid_IO_Pos covers gtid_binlog_pos), so
// that what follows is about applying, not receiving.
func waitReceived(t *testing.T, p, r *mysqlrepl.Client) {
	t.Helper()
	ctx := context.Background()
	want, err := p.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantG, _ := mysqlrepl.ParseGTIDList(want)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s, err := r.Read(ctx)
		if err == nil && len(s.Replicas) == 1 {
			got, _ := mysqlrepl.ParseGTIDList(s.Replicas[0].GtidIOPos)
			if mysqlrepl.Behind(got, wantG) == 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("replica did not receive the primary's %s within 20s", want)
}

func readOnly(t *testing.T, r *mysqlrepl.Client) bool {
	t.Helper()
	var ro int
	if err := r.DB().QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
		t.Fatal(err)
	}
	return ro != 0
}

// A replica whose SQL thread lags (stopped, then held by a table lock)
// while its IO thread has received the primary's rows: the promotion
// waits until they are applied, so none is lost. The old promotion
// (STOP SLAVE; RESET SLAVE ALL at once) dropped them with the relay logs.
func TestMySQLPromoteAppliesReceivedTransactions(t *testing.T) {
	p, r, db := mysqlPair(t)
	_, _, rt := newMySQLMonitor(t, r, watch.Limits{})
	rt.ApplyTimeout = 30 * time.Second
	ctx := context.Background()
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (0, 'before')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)

	mustExec(t, r.DB(), "STOP SLAVE SQL_THREAD")
	const rows = 200
	for i := 1; i <= rows; i++ {
		mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (?, 'lagging')", i)
	}
	waitReceived(t, p, r)
	// Hold the SQL thread even once the promotion restarts it.
	lock, err := r.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "LOCK TABLES "+db+".t WRITE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		done events.DatabaseCommandDone
		err  error
	}
	res := make(chan result, 1)
	go func() {
		done, err := rt.Command(ctx, events.DatabaseCommand{Command: "promote", Database: events.MySQL})
		res <- result{done, err}
	}()
	time.Sleep(1500 * time.Millisecond)
	select {
	case got := <-res:
		t.Fatalf("promote returned while the SQL thread was still held: %+v, %v", got.done, got.err)
	default:
	}
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	got := <-res
	if got.err != nil || got.done.Error != "" {
		t.Fatalf("promote: %+v, %v", got.done, got.err)
	}
	var n int
	if err := r.DB().QueryRow("SELECT COUNT(*) FROM " + db + ".t").Scan(&n); err != nil || n != rows+1 {
		t.Fatalf("promoted replica has %d rows (%v), want every received one: %d", n, err, rows+1)
	}
	if readOnly(t, r) {
		t.Fatal("promoted replica is still read-only")
	}
	if s, err := r.Read(ctx); err != nil || len(s.Replicas) != 0 {
		t.Fatalf("promoted replica still replicates: %+v, %v", s.Replicas, err)
	}
}

// A SQL thread stopped on an error (a duplicate key: a row written on the
// replica outside replication) with transactions received behind it: the
// promotion is refused with the evidence and the replica left as it was;
// with force it promotes and the answer names what was discarded.
func TestMySQLPromoteRefusedOnSQLErrorUnlessForced(t *testing.T) {
	p, r, db := mysqlPair(t)
	_, _, rt := newMySQLMonitor(t, r, watch.Limits{})
	rt.ApplyTimeout = 5 * time.Second
	ctx := context.Background()
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (1, 'ok')")
	waitRow(t, r.DB(), "SELECT COUNT(*) FROM "+db+".t", 1)

	conn, err := r.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET SESSION sql_log_bin=0", "INSERT INTO " + db + ".t VALUES (2, 'local')"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (2, 'clash')")
	mustExec(t, p.DB(), "INSERT INTO "+db+".t VALUES (3, 'behind the clash')")
	waitReceived(t, p, r)
	ppos, _ := p.Position(ctx)

	start := time.Now()
	done, err := rt.Command(ctx, events.DatabaseCommand{Command: "promote", Database: events.MySQL})
	if !errors.Is(err, mysqlrepl.ErrUnapplied) {
		t.Fatalf("promote without force: %+v, %v; want ErrUnapplied", done, err)
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{"refused", "1062", "2 received transaction(s) not applied", ppos, "force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %q", err, want)
		}
	}
	if !readOnly(t, r) {
		t.Fatal("refused promotion left the replica writable")
	}
	s, err := r.Read(ctx)
	if err != nil || len(s.Replicas) != 1 || s.Replicas[0].IORunning == "No" {
		t.Fatalf("refused promotion did not leave the replica receiving: %+v, %v", s.Replicas, err)
	}

	// The restarted IO thread fetches again from gtid_slave_pos.
	waitReceived(t, p, r)
	done, err = rt.Command(ctx, events.DatabaseCommand{Command: "promote", Database: events.MySQL, Force: true})
	if err != nil {
		t.Fatalf("forced promote: %v", err)
	}
	if !strings.HasPrefix(done.Error, "forced: discarded 2 received transaction(s)") || !strings.Contains(done.Error, "1062") {
		t.Fatalf("forced promote answer %q does not say what was discarded", done.Error)
	}
	if readOnly(t, r) {
		t.Fatal("forced promotion left the replica read-only")
	}
}
