package monitor

import (
	"context"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/mysqlrepl"
	"github.com/drwatch/drwatch/services/dbmonitor/internal/pgrepl"
)

// BenchmarkCheck measures one check round (reading the replica and its
// primary) per database. Run: go test -run x -bench . ./internal/monitor
func BenchmarkCheck(b *testing.B) {
	b.Run("mysql", func(b *testing.B) {
		r, err := mysqlrepl.Open(envB(b, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		t := &MySQL{Local: r}
		for b.Loop() {
			if obs := t.Observe(context.Background(), true); len(obs.Findings) > 0 {
				b.Fatalf("unhealthy: %+v", obs.Findings)
			}
		}
	})
	b.Run("pgsql", func(b *testing.B) {
		s, err := pgrepl.Open(context.Background(), envB(b, "DRWATCH_TEST_PGSQL_STANDBY_DSN"))
		if err != nil {
			b.Fatal(err)
		}
		t := &PgSQL{Local: s}
		defer t.Close()
		for b.Loop() {
			if obs := t.Observe(context.Background(), true); len(obs.Findings) > 0 {
				b.Fatalf("unhealthy: %+v", obs.Findings)
			}
		}
	})
}

// BenchmarkPromote measures promote of each standby, then heals the pair
// with scripts/testdb.sh (outside the timer).
func BenchmarkPromote(b *testing.B) {
	b.Run("mysql", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			testdbB(b, "heal", "mysql")
			r, err := mysqlrepl.Open(envB(b, "DRWATCH_TEST_MYSQL_REPLICA_DSN"))
			if err != nil {
				b.Fatal(err)
			}
			t := &MySQL{Local: r}
			b.StartTimer()
			if _, err := t.Command(context.Background(), events.DatabaseCommand{Command: "promote"}); err != nil {
				b.Fatal(err)
			}
			r.Close()
			b.StartTimer()
		}
		testdbB(b, "heal", "mysql")
	})
	b.Run("pgsql", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			testdbB(b, "heal", "pgsql")
			s, err := pgrepl.Open(context.Background(), envB(b, "DRWATCH_TEST_PGSQL_STANDBY_DSN"))
			if err != nil {
				b.Fatal(err)
			}
			t := &PgSQL{Local: s}
			b.StartTimer()
			start := time.Now()
			if _, err := t.Command(context.Background(), events.DatabaseCommand{Command: "promote"}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/promote")
			t.Close()
			b.StartTimer()
		}
		testdbB(b, "heal", "pgsql")
	})
}
