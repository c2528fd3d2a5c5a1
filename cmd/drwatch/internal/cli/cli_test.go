package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseDisableDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"2h", 2 * time.Hour, ""},
		{"30m", 30 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"2", 2 * time.Hour, ""},
		{"1.5", 90 * time.Minute, ""},
		{"0", 0, ""},
		{" 4 ", 4 * time.Hour, ""},
		{"2x", 0, `"2x" is not a duration`},
		{"", 0, "empty duration"},
		{"-1", 0, "negative"},
		{"-2h", 0, "not positive"},
		{"0s", 0, "not positive: use 0"},
	}
	for _, tt := range tests {
		got, err := ParseDisableDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDisableDuration(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDisableDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitSQLKeepsThePostgresDoBlockWhole(t *testing.T) {
	p := &pairSpec{Active: "a", Standby: "b", ActiveAddr: "10.0.0.1", StandbyAdr: "10.0.0.2", Users: replUsers{PgRepUser: "replication", PgRepPass: "r", PgAdminUser: "postgres", PgAdminPass: "p", MySQLRepUser: "repUser", MySQLRepPass: "x", MySQLAdminUser: "repAdmin", MySQLAdminPass: "y"}}
	pg := splitSQL(p.pgUsers(), true)
	if len(pg) != 3 || !strings.HasPrefix(pg[0], "DO $$") || !strings.HasSuffix(pg[0], "END $$") {
		t.Errorf("pg statements = %q", pg)
	}
	my := splitSQL(p.mysqlUsers(), false)
	want := []string{"CREATE USER", "GRANT", "CREATE USER", "GRANT", "FLUSH"}
	var got []string
	for _, s := range my {
		got = append(got, strings.Fields(s)[0]+map[bool]string{true: " USER"}[strings.HasPrefix(s, "CREATE USER")])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mysql statements (-want +got):\n%s\n%q", diff, my)
	}
}

func TestWords(t *testing.T) {
	if rest, err := words([]string{"v1", "config", "--list"}, "v1", "config"); err != nil || len(rest) != 1 {
		t.Errorf("words = %v, %v", rest, err)
	}
	if _, err := words([]string{"v2"}, "v1", "config"); err == nil || !strings.Contains(err.Error(), `expected "v1", got "v2"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := words([]string{"v1"}, "v1", "config"); err == nil || !strings.Contains(err.Error(), "got nothing") {
		t.Errorf("err = %v", err)
	}
}
