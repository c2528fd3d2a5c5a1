package chaos

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/checker"
)

func TestScheduleIsTheSeeds(t *testing.T) {
	a, b := Schedule(101, time.Minute, 15*time.Second, Kinds), Schedule(101, time.Minute, 15*time.Second, Kinds)
	if d := cmp.Diff(a, b); d != "" {
		t.Fatalf("one seed, two schedules (-first +second):\n%s", d)
	}
	if len(a) == 0 {
		t.Fatal("a 60 s run drew no fault")
	}
	for i, f := range a {
		if f.At < 5*time.Second || f.At+f.Hold > time.Minute || f.Hold < 3*time.Second || f.Hold > 15*time.Second {
			t.Errorf("fault %d %s: outside the warm-up, the run or the 3–15 s hold", i, f)
		}
		if i > 0 && f.At < a[i-1].At+a[i-1].Hold+2*time.Second {
			t.Errorf("fault %d %s starts before the previous one healed plus 2 s", i, f)
		}
	}
	if d := cmp.Diff(a, Schedule(102, time.Minute, 15*time.Second, Kinds)); d == "" {
		t.Error("seeds 101 and 102 drew the same schedule")
	}
}

func TestObservations(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	vips := []vipSample{{at: ms(-5), holders: []string{"a"}}, {at: ms(10), holders: []string{"a"}}, {at: ms(20)}, {at: ms(300), holders: []string{"b"}}}
	wr := map[string][]reading{
		"a": {{ms(5), "1"}, {ms(15), "0"}},
		"b": {{ms(8), "0"}, {ms(18), "?"}, {ms(150), "1"}},
	}
	want := []checker.Observation{
		{At: ms(10), VIP: []string{"a"}, Writable: []string{"a"}},
		{At: ms(20)},
		// b's reading is 150 ms old: too old to say it is writable now.
		{At: ms(300), VIP: []string{"b"}},
	}
	if d := cmp.Diff(want, observations(t0, vips, wr)); d != "" {
		t.Errorf("observations (-want +got):\n%s", d)
	}
}
