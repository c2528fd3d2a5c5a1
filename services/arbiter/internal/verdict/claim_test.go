package verdict

import (
	"testing"

	"github.com/drwatch/drwatch/pkg/events"
)

func TestJudgeClaim(t *testing.T) {
	th := Thresholds{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7}
	tests := []struct {
		name string
		in   ClaimInput
		want Claim
	}{
		{"no arbiters", ClaimInput{N: 0, Thresholds: th}, Claim{Outcome: events.ClaimFailed, Done: true, Branch: BranchNoArbiters}},
		{"nobody else holds them", ClaimInput{N: 3, Held: 3, Thresholds: th}, Claim{Outcome: events.ClaimClear, Done: true, Branch: BranchStandbyFailover}},
		{"one unreachable, the peer holds none", ClaimInput{N: 3, Held: 2, Unreachable: 1, Thresholds: th}, Claim{Outcome: events.ClaimClear, Done: true, Branch: BranchStandbyFailover}},
		{"too few sessions held", ClaimInput{N: 3, Held: 1, Thresholds: th}, Claim{Outcome: events.ClaimFailed, Done: true, Branch: "claim-too-few-sessions"}},
		{"exactly the failover share held", ClaimInput{N: 4, Held: 2, Thresholds: th}, Claim{Outcome: events.ClaimClear, Done: true, Branch: BranchStandbyFailover}},
		{"the active peer holds most", ClaimInput{N: 3, Held: 3, Managed: 2, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Done: true, Branch: BranchStandbyManaged}},
		{"the peer holds one the other unreachable: look again", ClaimInput{N: 3, Held: 2, Managed: 1, Unreachable: 1, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Branch: BranchStandbyAdjusted}},
		{"an active about to fence itself: wait for its round", ClaimInput{N: 3, Held: 3, Managed: 1, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Branch: BranchStandbyFailover}},
		{"an active that kept a minority past its round: seed 000 takes over", ClaimInput{N: 3, Held: 3, Managed: 1, PeerHadItsRound: true, Thresholds: th}, Claim{Outcome: events.ClaimClear, Done: true, Branch: BranchStandbyFailover}},
		{"a minority held at the last look: seed 000 takes over", ClaimInput{N: 3, Held: 3, Managed: 1, LastLook: true, Thresholds: th}, Claim{Outcome: events.ClaimClear, Done: true, Branch: BranchStandbyFailover}},
		{"both claim: the tie winner looks again", ClaimInput{N: 3, Held: 3, Managed: 2, WinsTie: true, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Branch: BranchStandbyManaged}},
		{"both claim: the tie winner gives up when time is out", ClaimInput{N: 3, Held: 3, Managed: 2, WinsTie: true, LastLook: true, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Done: true, Branch: BranchStandbyManaged}},
		{"arbiters unreachable over SSH: look again while there is time", ClaimInput{N: 4, Held: 2, Unreachable: 3, WinsTie: true, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Branch: BranchStandbyIsolated}},
		{"isolated at the last look: no second look helps", ClaimInput{N: 4, Held: 2, Unreachable: 3, LastLook: true, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Done: true, Branch: BranchStandbyIsolated}},
		{"the peer holds one, the other unreachable, at the last look", ClaimInput{N: 3, Held: 2, Managed: 1, Unreachable: 1, LastLook: true, Thresholds: th}, Claim{Outcome: events.ClaimConflict, Done: true, Branch: BranchStandbyAdjusted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := JudgeClaim(tt.in)
			if got.Outcome != tt.want.Outcome || got.Done != tt.want.Done || got.Branch != tt.want.Branch {
				t.Errorf("got %s done=%v branch %s (%s), want %s done=%v branch %s",
					got.Outcome, got.Done, got.Branch, got.Description, tt.want.Outcome, tt.want.Done, tt.want.Branch)
			}
		})
	}
}
