package plugin

import (
	"strings"
	"testing"
	"time"
)

func TestWhenResolve(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 21:10:30.7 UTC = 22:10:30.7 in Berlin (CET, +01:00).
	now := time.Date(2026, 11, 29, 21, 10, 30, 700_000_000, time.UTC)
	d := func(s string) *time.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	cases := []struct {
		name  string
		when  When
		local *time.Location // the machine's zone (time.Local)
		want  string         // the schedule, as written
		err   string         // a part of the error
	}{
		{name: "in 0s is now, whole seconds", when: When{In: d("0s")}, local: time.UTC, want: "2026-11-29T21:10:30Z"},
		{name: "in 5m", when: When{In: d("5m")}, local: time.UTC, want: "2026-11-29T21:15:30Z"},
		{name: "in 1.5s truncates, never later than asked", when: When{In: d("1.5s")}, local: time.UTC, want: "2026-11-29T21:10:32Z"},
		{name: "in, written in the machine's zone", when: When{In: d("1h")}, local: berlin, want: "2026-11-29T23:10:30+01:00"},
		{name: "in, written in --time-zone", when: When{In: d("1h"), Zone: "America/New_York"}, local: berlin, want: "2026-11-29T17:10:30-05:00"},
		{name: "negative in", when: When{In: d("-1m")}, local: time.UTC, err: "negative"},
		{name: "neither", when: When{}, local: time.UTC, err: "say when"},
		{name: "both", when: When{In: d("1m"), At: "09:00"}, local: time.UTC, err: "not both"},

		{name: "at RFC 3339 keeps the typed offset", when: When{At: "2026-12-01T09:00:00+01:00"}, local: time.UTC, want: "2026-12-01T09:00:00+01:00"},
		{name: "at RFC 3339 Z", when: When{At: "2026-12-01T08:00:00Z"}, local: berlin, want: "2026-12-01T08:00:00Z"},
		{name: "at RFC 3339 with fraction", when: When{At: "2026-12-01T09:00:00.250+01:00"}, local: time.UTC, want: "2026-12-01T09:00:00.25+01:00"},
		{name: "at RFC 3339 rewritten in --time-zone", when: When{At: "2026-12-01T08:00:00Z", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-12-01T09:00:00+01:00"},
		{name: "at RFC 3339 in the past", when: When{At: "2026-11-29T21:00:00Z"}, local: time.UTC, err: "is 10m ago; to run the command now, say --in 0s"},

		{name: "at local date-time in --time-zone", when: When{At: "2026-12-01T09:00", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-12-01T09:00:00+01:00"},
		{name: "at local date-time with a space and seconds", when: When{At: "2026-12-01 09:00:05", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-12-01T09:00:05+01:00"},
		{name: "at local date-time in summer time", when: When{At: "2027-07-01T09:00", Zone: "Europe/Berlin"}, local: time.UTC, want: "2027-07-01T09:00:00+02:00"},
		{name: "at local date-time in the machine's zone", when: When{At: "2026-12-01T09:00"}, local: berlin, want: "2026-12-01T09:00:00+01:00"},
		{name: "at local date-time skipped by DST", when: When{At: "2027-03-28T02:30", Zone: "Europe/Berlin"}, local: time.UTC, err: "does not exist in Europe/Berlin"},
		{name: "at local date-time in the past", when: When{At: "2026-11-29T22:00", Zone: "Europe/Berlin"}, local: time.UTC, err: "(2026-11-29T22:00:00+01:00) is 10m ago"},

		{name: "at clock time later today", when: When{At: "23:00", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-11-29T23:00:00+01:00"},
		{name: "at clock time passed today: tomorrow", when: When{At: "09:00", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-11-30T09:00:00+01:00"},
		{name: "at clock time: today's date is the zone's", when: When{At: "07:00", Zone: "Asia/Tokyo"}, local: time.UTC, want: "2026-11-30T07:00:00+09:00"},
		{name: "at clock time with one-digit hour and seconds", when: When{At: "9:00:15", Zone: "UTC"}, local: berlin, want: "2026-11-30T09:00:15Z"},
		{name: "at clock time in the machine's zone", when: When{At: "22:11"}, local: berlin, want: "2026-11-29T22:11:00+01:00"},
		{name: "at clock time equal to now: tomorrow", when: When{At: "22:10:30", Zone: "Europe/Berlin"}, local: time.UTC, want: "2026-11-30T22:10:30+01:00"},

		{name: "at garbage", when: When{At: "tomorrow"}, local: time.UTC, err: `--at "tomorrow" is not a time`},
		{name: "at without offset is not RFC 3339 but a local time", when: When{At: "2026-12-01T09:00:00"}, local: time.UTC, want: "2026-12-01T09:00:00Z"},
		{name: "unknown zone", when: When{At: "09:00", Zone: "Mars/Olympus"}, local: time.UTC, err: "not an IANA time zone"},
	}
	defer func(l *time.Location) { time.Local = l }(time.Local)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			time.Local = c.local
			got, err := c.when.Resolve(now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want one containing %q (got %s)", err, c.err, FormatSchedule(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := FormatSchedule(got); s != c.want {
				t.Errorf("schedule = %s, want %s", s, c.want)
			}
		})
	}
}

func TestClockTimeSkippedTomorrowByDST(t *testing.T) {
	// 02:30 on 2027-03-28 does not exist in Berlin; asked at 03:00 the day
	// before, the next 02:30 is the day after.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2027, 3, 27, 3, 0, 0, 0, berlin)
	got, err := When{At: "02:30", Zone: "Europe/Berlin"}.Resolve(now)
	if err != nil {
		t.Fatal(err)
	}
	if s := FormatSchedule(got); s != "2027-03-29T02:30:00+02:00" {
		t.Errorf("schedule = %s, want the 29th", s)
	}
}

func TestRelative(t *testing.T) {
	now := time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{4*time.Minute + 12*time.Second, "in 4m12s"},
		{-3 * time.Minute, "3m ago"},
		{-90 * time.Second, "90s ago"},
		{300 * time.Millisecond, "now"},
		{-999 * time.Millisecond, "now"},
		{26 * time.Hour, "in 26h"},
		{-50 * 24 * time.Hour, "50d ago"},
	} {
		if got := Relative(now.Add(c.d), now); got != c.want {
			t.Errorf("Relative(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}
