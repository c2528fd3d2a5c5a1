package orchestrator

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/config"
)

func TestReleaseVIP(t *testing.T) {
	cfg := config.Defaults()
	if err := ReleaseVIP(context.Background(), &cfg); !errors.Is(err, ErrNoVIP) {
		t.Errorf("no vip.address: %v, want ErrNoVIP", err)
	}
	for _, tt := range []struct {
		name string
		held bool
		want []string
	}{
		{"held: released", true, []string{"release"}},
		{"not held: left alone", false, nil},
	} {
		v := &fakeVIP{held: tt.held}
		if err := releaseVIP(context.Background(), v); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := v.opsSeen(); !cmp.Equal(got, tt.want) || v.holds() {
			t.Errorf("%s: ops %v held=%v, want %v and not held", tt.name, got, v.holds(), tt.want)
		}
	}
}
