package bus

import "testing"

func TestSubjectMatches(t *testing.T) {
	for _, tt := range []struct {
		filter, subject string
		want            bool
	}{
		{"drwatch.*.evt.*.RoleChanged", "drwatch.a.evt.orchestrator.RoleChanged", true},
		{"drwatch.*.evt.*.RoleChanged", "drwatch.a.evt.orchestrator.RoleConfirmed", false},
		{"drwatch.b.evt.>", "drwatch.a.evt.orchestrator.RoleChanged", false},
		{"drwatch.a.evt.>", "drwatch.a.evt.orchestrator.RoleChanged", true},
		{"drwatch.a.evt.>", "drwatch.a.evt", false},
		{"drwatch.*.evt.*", "drwatch.a.evt.orchestrator.RoleChanged", false},
		{"drwatch.a.evt.orchestrator.RoleChanged", "drwatch.a.evt.orchestrator.RoleChanged", true},
	} {
		if got := subjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
		}
	}
}
