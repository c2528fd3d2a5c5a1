package schedule

import (
	"testing"
	"time"
)

func TestParseNamesTheField(t *testing.T) {
	for _, tc := range []struct{ hours, days, want string }{
		{"25", "*", `file.backup.hoursOfDay: "25" is outside 0-23`},
		{"*", "mon", `file.backup.daysOfWeek: "mon" is not a number, a range like 1-5, or *`},
	} {
		_, err := Parse("file.backup", tc.hours, tc.days)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %q) = %v, want %s", tc.hours, tc.days, err, tc.want)
		}
	}
}

func TestDue(t *testing.T) {
	// 2025-03-05 is a Wednesday (weekday 3).
	at := func(day, hour, min int) time.Time { return time.Date(2025, 3, day, hour, min, 0, 0, time.UTC) }
	every, _ := Parse("f", "*", "*")
	nightly, _ := Parse("f", "2", "*")
	weekdays, _ := Parse("f", "1,3,20-23", "1-5")
	sunday, _ := Parse("f", "*", "0")
	tests := []struct {
		name string
		s    Schedule
		now  time.Time
		last time.Time
		want bool
	}{
		{"never run, every hour", every, at(5, 10, 30), time.Time{}, true},
		{"ran earlier this hour", every, at(5, 10, 30), at(5, 10, 0), false},
		{"ran in the previous hour", every, at(5, 10, 0), at(5, 9, 59), true},
		{"ran at the slot start", every, at(5, 10, 59), at(5, 10, 0), false},
		{"nightly, wrong hour", nightly, at(5, 3, 0), time.Time{}, false},
		{"nightly, right hour", nightly, at(5, 2, 15), at(4, 2, 5), true},
		{"nightly, already ran tonight", nightly, at(5, 2, 45), at(5, 2, 5), false},
		{"list and range, hour 21 wednesday", weekdays, at(5, 21, 0), at(5, 3, 0), true},
		{"list and range, hour 2 not listed", weekdays, at(5, 2, 0), time.Time{}, false},
		{"list and range, saturday", weekdays, at(8, 21, 0), time.Time{}, false},
		{"sunday only, on sunday", sunday, at(9, 0, 0), at(8, 23, 0), true},
		{"sunday only, on monday", sunday, at(10, 0, 0), at(9, 23, 0), false},
		{"clock went back: last in the future", every, at(5, 10, 0), at(5, 11, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Due(tc.s, tc.now, tc.last); got != tc.want {
				t.Errorf("Due(%v, last %v) = %v, want %v", tc.now, tc.last, got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	at := func(day, hour int) time.Time { return time.Date(2025, 3, day, hour, 0, 0, 0, time.UTC) }
	every, _ := Parse("f", "*", "*")
	nightly, _ := Parse("f", "2", "*")
	weekend, _ := Parse("f", "4", "0,6")
	tests := []struct {
		name string
		s    Schedule
		now  time.Time
		want time.Time
	}{
		{"every hour", every, at(5, 10).Add(17 * time.Minute), at(5, 11)},
		{"nightly later today", nightly, at(5, 1).Add(time.Minute), at(5, 2)},
		{"nightly tomorrow", nightly, at(5, 2).Add(time.Minute), at(6, 2)},
		{"wednesday to saturday", weekend, at(5, 12), at(8, 4)},
		{"saturday to sunday", weekend, at(8, 4), at(9, 4)},
		{"across month end", nightly, time.Date(2025, 3, 31, 5, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 2, 0, 0, 0, time.UTC)},
		{"empty schedule", Schedule{}, at(5, 1), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Next(tc.s, tc.now); !got.Equal(tc.want) {
				t.Errorf("Next(%v) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}
