package plugin

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// When is how a user names the instant to run at: exactly one of In (a Go
// duration from now) or At (an RFC 3339 instant, a local date-time, or a
// clock time), with an optional IANA time zone.
type When struct {
	// In is set when --in was given (0 means now).
	In   *time.Duration
	At   string
	Zone string
}

// localDateTimeLayouts are date-times without an offset, read in the zone.
var localDateTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
}

// clockLayouts are times of day: the next such time in the zone, today or
// tomorrow, as at(1) reads "at 09:00".
var clockLayouts = []string{"15:04:05", "15:04"}

// Resolve turns w into an instant, in the location the schedule is written
// in: the --time-zone when given, else the offset the user typed, else the
// machine's local zone (as at(1) does).
func (w When) Resolve(now time.Time) (time.Time, error) {
	loc := time.Local
	if w.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(w.Zone); err != nil {
			return time.Time{}, fmt.Errorf("--time-zone %q is not an IANA time zone such as Europe/Berlin or UTC: %w", w.Zone, err)
		}
	}
	switch {
	case w.In != nil && w.At != "":
		return time.Time{}, errors.New("give either --in or --at, not both")
	case w.In != nil:
		if *w.In < 0 {
			return time.Time{}, fmt.Errorf("--in %s is negative: an At runs now or later (--in 0s is now)", *w.In)
		}
		// Whole seconds: a schedule a person reads, and never later than asked.
		return now.Add(*w.In).Truncate(time.Second).In(loc), nil
	case w.At != "":
		return resolveAt(w.At, w.Zone != "", loc, now)
	default:
		return time.Time{}, errors.New("say when: --in DURATION (e.g. --in 5m, --in 0s for now) or --at TIME (e.g. --at 09:00, --at 2026-12-01T09:00:00+01:00)")
	}
}

func resolveAt(at string, zoneGiven bool, loc *time.Location, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		if zoneGiven {
			t = t.In(loc)
		}
		if t.Before(now) {
			return time.Time{}, fmt.Errorf("--at %s is %s ago; to run the command now, say --in 0s", at, duration.HumanDuration(now.Sub(t)))
		}
		return t, nil
	}
	for _, layout := range localDateTimeLayouts {
		if t, err := time.ParseInLocation(layout, at, loc); err == nil {
			if err := existsInZone(t, layout, at, loc); err != nil {
				return time.Time{}, err
			}
			if t.Before(now) {
				return time.Time{}, fmt.Errorf("--at %s (%s) is %s ago; to run the command now, say --in 0s",
					at, t.Format(time.RFC3339), duration.HumanDuration(now.Sub(t)))
			}
			return t, nil
		}
	}
	for _, layout := range clockLayouts {
		clock, err := time.Parse(layout, at)
		if err != nil {
			continue
		}
		today := now.In(loc)
		for days := 0; days <= 2; days++ { // tomorrow's may not exist (DST); then the day after
			y, m, d := today.Date()
			t := time.Date(y, m, d+days, clock.Hour(), clock.Minute(), clock.Second(), 0, loc)
			if t.Hour() != clock.Hour() || t.Minute() != clock.Minute() {
				continue // skipped by a daylight-saving change that day
			}
			if t.After(now) {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("--at %s does not occur in %s in the next two days", at, loc)
	}
	return time.Time{}, fmt.Errorf("--at %q is not a time: use RFC 3339 with an offset (2026-12-01T09:00:00+01:00), "+
		"a local date-time (2026-12-01T09:00) or a clock time (09:00), the last two read in --time-zone (default: this machine's)", at)
}

// existsInZone rejects a local date-time that a daylight-saving change skips
// in loc: Go would silently move it by the size of the gap.
func existsInZone(t time.Time, layout, at string, loc *time.Location) error {
	const wallClock = "2006-01-02T15:04:05.999999999"
	typed, _ := time.Parse(layout, at) // the same digits, read as UTC: the wall clock the user asked for
	if t.Format(wallClock) != typed.Format(wallClock) {
		return fmt.Errorf("--at %s does not exist in %s: the clocks skip it that day", at, loc)
	}
	return nil
}

// FormatSchedule writes t as spec.schedule: RFC 3339 with the offset of t's
// location (the CRD accepts only instants with an offset), with fractional
// seconds only when there are any.
func FormatSchedule(t time.Time) string {
	return t.Format(time.RFC3339Nano)
}

// Relative says how far t is from now for a person: "in 4m12s", "3m ago", "now".
func Relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d >= time.Second:
		return "in " + duration.HumanDuration(d)
	case d <= -time.Second:
		return duration.HumanDuration(-d) + " ago"
	default:
		return "now"
	}
}
