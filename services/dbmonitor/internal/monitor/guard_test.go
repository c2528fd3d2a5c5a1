package monitor

import (
	"errors"
	"strings"
	"testing"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestGuardResync(t *testing.T) {
	resync := events.DatabaseCommand{Command: "resync", Database: events.MySQL, Target: "a"}
	forced := resync
	forced.Force = true
	promote := events.DatabaseCommand{Command: "promote", Database: events.MySQL, Target: "a"}
	tests := []struct {
		name string
		cmd  events.DatabaseCommand
		role events.Role
		want error
	}{
		{"standby site", resync, events.RoleStandby, nil},
		{"role not known yet", resync, "", nil},
		{"active site", resync, events.RoleActive, ErrActiveSite},
		{"standalone site", resync, events.RoleStandalone, ErrActiveSite},
		{"active site, forced", forced, events.RoleActive, nil},
		{"other commands are not resyncs", promote, events.RoleActive, nil},
	}
	for _, tc := range tests {
		err := GuardResync(tc.cmd, "a", tc.role)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: GuardResync = %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && (!strings.Contains(err.Error(), "force") || !strings.Contains(err.Error(), "site a is "+string(tc.role))) {
			t.Errorf("%s: the refusal should name the site, its role and force: %v", tc.name, err)
		}
	}
}
