package at

import (
	"strings"
	"testing"
	"time"

	cnatv1alpha1 "github.com/programming-kubernetes/cnat/api/v1alpha1"
)

// The schedule's instant, with and without spec.timeZone, including the one
// defined outcome for each kind of DST transition.
func TestSchedule(t *testing.T) {
	tests := []struct {
		name, schedule, zone string
		want                 string // the instant, RFC 3339 in UTC; "" when refused
		wantLocal            string // the instant as the zone's wall clock shows it, when it matters
		wantErr              string
	}{
		{name: "no zone: the schedule's own offset", schedule: "2026-02-10T21:35:00+01:00", want: "2026-02-10T20:35:00Z"},
		{name: "a whole-hour zone in winter", schedule: "2026-02-10T21:35:00", zone: "Europe/Berlin", want: "2026-02-10T20:35:00Z"},
		{name: "the same zone in summer", schedule: "2026-07-10T21:35:00", zone: "Europe/Berlin", want: "2026-07-10T19:35:00Z"},
		{name: "a half-hour zone", schedule: "2026-02-11T02:05:00", zone: "Asia/Kolkata", want: "2026-02-10T20:35:00Z"},
		{name: "a quarter-hour zone", schedule: "2026-02-11T02:20:00", zone: "Asia/Kathmandu", want: "2026-02-10T20:35:00Z"},
		{name: "fractional seconds kept", schedule: "2026-02-10T21:35:00.25", zone: "Europe/Berlin", want: "2026-02-10T20:35:00.25Z"},
		{name: "UTC by name", schedule: "2026-02-10T20:35:00", zone: "UTC", want: "2026-02-10T20:35:00Z"},
		{name: "gap (Berlin skips 02:00-03:00): as much later as the gap is long",
			schedule: "2026-03-29T02:30:00", zone: "Europe/Berlin", want: "2026-03-29T01:30:00Z", wantLocal: "03:30+02:00"},
		{name: "gap in New York (02:00-03:00 skipped)",
			schedule: "2026-03-08T02:15:00", zone: "America/New_York", want: "2026-03-08T07:15:00Z", wantLocal: "03:15-04:00"},
		{name: "half-hour gap (Lord Howe goes from +10:30 to +11)",
			schedule: "2026-10-04T02:15:00", zone: "Australia/Lord_Howe", want: "2026-10-03T15:45:00Z", wantLocal: "02:45+11:00"},
		{name: "just before a gap: as written", schedule: "2026-03-29T01:59:59", zone: "Europe/Berlin", want: "2026-03-29T00:59:59Z"},
		{name: "the end of a gap: as written", schedule: "2026-03-29T03:00:00", zone: "Europe/Berlin", want: "2026-03-29T01:00:00Z"},
		{name: "overlap (Berlin repeats 02:00-03:00): the first, summer-time instant",
			schedule: "2026-10-25T02:30:00", zone: "Europe/Berlin", want: "2026-10-25T00:30:00Z", wantLocal: "02:30+02:00"},
		{name: "overlap in New York: the first, daylight-time instant",
			schedule: "2026-11-01T01:30:00", zone: "America/New_York", want: "2026-11-01T05:30:00Z", wantLocal: "01:30-04:00"},
		{name: "just after an overlap: as written", schedule: "2026-10-25T03:00:00", zone: "Europe/Berlin", want: "2026-10-25T02:00:00Z"},
		{name: "southern hemisphere overlap (Sydney repeats 02:00-03:00 in April)",
			schedule: "2026-04-05T02:30:00", zone: "Australia/Sydney", want: "2026-04-04T15:30:00Z", wantLocal: "02:30+11:00"},
		{name: "unknown zone", schedule: "2026-02-10T20:35:00", zone: "Mars/Olympus_Mons", wantErr: "spec.timeZone"},
		{name: "the manager's Local zone", schedule: "2026-02-10T20:35:00", zone: "Local", wantErr: "spec.timeZone"},
		{name: "an offset and a zone", schedule: "2026-02-10T20:35:00Z", zone: "Europe/Berlin", wantErr: "spec.schedule"},
		{name: "no offset and no zone", schedule: "2026-02-10T20:35:00", wantErr: "spec.schedule"},
		{name: "a zone that takes the instant past year 9999", schedule: "9999-12-31T23:30:00", zone: "America/Los_Angeles", wantErr: "outside 0001 to 9999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Schedule(&cnatv1alpha1.AtSpec{Schedule: tc.schedule, TimeZone: tc.zone})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Schedule(%q, %q) = %v, %v; want an error naming %s", tc.schedule, tc.zone, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Schedule(%q, %q): %v", tc.schedule, tc.zone, err)
			}
			if s := got.UTC().Format(time.RFC3339Nano); s != tc.want {
				t.Errorf("Schedule(%q, %q) = %s, want %s", tc.schedule, tc.zone, s, tc.want)
			}
			if local := got.Format("15:04Z07:00"); tc.wantLocal != "" && local != tc.wantLocal {
				t.Errorf("Schedule(%q, %q) reads %s on the zone's clock, want %s", tc.schedule, tc.zone, local, tc.wantLocal)
			}
		})
	}
}
