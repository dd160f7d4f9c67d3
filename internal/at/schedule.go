package at

import (
	"errors"
	"fmt"
	"time"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// localLayout is spec.schedule with spec.timeZone: RFC 3339 without the offset.
const localLayout = "2006-01-02T15:04:05.999999999"

// ParseSchedule parses spec.schedule the way admission validates it.
func ParseSchedule(schedule string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.schedule %q is not an RFC 3339 date-time: %w", schedule, err)
	}
	return inRange(schedule, t)
}

func inRange(schedule string, t time.Time) (time.Time, error) {
	if year := t.UTC().Year(); year < 1 || year > 9999 {
		return time.Time{}, fmt.Errorf("spec.schedule %q falls in the year %d in UTC, outside 0001 to 9999", schedule, year)
	}
	return t, nil
}

// Schedule is the instant spec asks for: spec.schedule itself, or, with
// spec.timeZone, its local date-time resolved in that zone by ResolveLocal.
func Schedule(spec *cnatv1alpha1.AtSpec) (time.Time, error) {
	if spec.TimeZone == "" {
		return ParseSchedule(spec.Schedule)
	}
	// "Local" is the manager's own zone, which nobody writing the At can know.
	if spec.TimeZone == "Local" {
		return time.Time{}, errors.New(`spec.timeZone "Local" is not an IANA time zone name`)
	}
	loc, err := time.LoadLocation(spec.TimeZone)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.timeZone %q is not a time zone the manager knows: %w", spec.TimeZone, err)
	}
	wall, err := time.Parse(localLayout, spec.Schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.schedule %q is not a local date-time without an offset, as spec.timeZone demands: %w",
			spec.Schedule, err)
	}
	return inRange(spec.Schedule, ResolveLocal(wall, loc))
}

// ResolveLocal is the instant whose wall clock in loc reads wall (wall's own
// location is ignored). time.Date leaves open which instant it picks when
// the wall time does not exist or exists twice, so this defines both:
//   - in a gap (clocks go forward), the wall time is read with the offset in
//     force before the gap, i.e. it runs as much later as the gap is long:
//     02:30 on the day Berlin skips 02:00-03:00 is 03:30 CEST;
//   - in an overlap (clocks go back), it is the first, earlier instant:
//     02:30 on the day Berlin repeats 02:00-03:00 is 02:30 CEST, not CET.
func ResolveLocal(wall time.Time, loc *time.Location) time.Time {
	asUTC := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(),
		wall.Nanosecond(), time.UTC)
	// A day either side brackets any one transition: offsets stay within ±26h
	// of UTC, and zones do not change twice in two days.
	_, before := asUTC.Add(-24 * time.Hour).In(loc).Zone()
	_, after := asUTC.Add(24 * time.Hour).In(loc).Zone()
	var first time.Time
	for _, offset := range []int{before, after} {
		candidate := asUTC.Add(-time.Duration(offset) * time.Second)
		if sameWall(candidate.In(loc), asUTC) && (first.IsZero() || candidate.Before(first)) {
			first = candidate
		}
	}
	if first.IsZero() {
		// A gap: no offset shows this wall time; read it with the earlier one.
		first = asUTC.Add(-time.Duration(before) * time.Second)
	}
	return first.In(loc)
}

func sameWall(t, wall time.Time) bool {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	wy, wmo, wd := wall.Date()
	wh, wmi, ws := wall.Clock()
	return y == wy && mo == wmo && d == wd && h == wh && mi == wmi && s == ws && t.Nanosecond() == wall.Nanosecond()
}
