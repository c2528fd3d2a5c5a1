// Package schedule decides when seed 000's file backups and restores run:
// at most once in each hour slot whose hour of day and day of week the
// schedule allows.
package schedule

import (
	"fmt"
	"slices"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
)

// Schedule is a parsed pair of seed 000 schedule fields.
type Schedule struct {
	// Hours are the allowed hours of day, 0-23.
	Hours []int
	// Days are the allowed days of week, 0-6 with 0 = Sunday.
	Days []int
}

// Parse reads hoursOfDay and daysOfWeek ("*" or lists and ranges such as
// "1,3,20-23"); field prefixes the errors, e.g. "file.backup".
func Parse(field, hoursOfDay, daysOfWeek string) (Schedule, error) {
	h, err := config.ParseSchedule(hoursOfDay, 0, 23)
	if err != nil {
		return Schedule{}, fmt.Errorf("%s.hoursOfDay: %w", field, err)
	}
	d, err := config.ParseSchedule(daysOfWeek, 0, 6)
	if err != nil {
		return Schedule{}, fmt.Errorf("%s.daysOfWeek: %w", field, err)
	}
	return Schedule{Hours: h, Days: d}, nil
}

// slot returns the start of t's hour in t's location.
func slot(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, t.Location())
}

func (s Schedule) allows(t time.Time) bool {
	return slices.Contains(s.Hours, t.Hour()) && slices.Contains(s.Days, int(t.Weekday()))
}

// Due reports whether a run is due at now, given the last run (zero when
// there was none): now's hour and weekday are allowed and no run happened
// since the start of now's hour. A run that failed still counts, so a
// broken peer is retried once per slot, not in a tight loop.
func Due(s Schedule, now, last time.Time) bool {
	if !s.allows(now) {
		return false
	}
	return last.IsZero() || last.Before(slot(now))
}

// Next returns the start of the first allowed slot after now's slot, or
// the zero time when the schedule allows none (an empty schedule).
func Next(s Schedule, now time.Time) time.Time {
	t := slot(now)
	// 8 days of hours covers every weekly schedule; time.Date normalises
	// hour overflow and daylight-saving gaps.
	for i := 1; i <= 8*24; i++ {
		c := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+i, 0, 0, 0, t.Location())
		if s.allows(c) {
			return c
		}
	}
	return time.Time{}
}
