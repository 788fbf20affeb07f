package buildinfo

import "testing"

func TestString(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, Date = v, c, d }(Version, Commit, Date)
	tests := []struct {
		name                  string
		version, commit, date string
		want                  string
	}{
		{"stamped", "v1.2.3", "0123abc", "2026-01-02T03:04:05Z", "gate v1.2.3 (commit 0123abc, built 2026-01-02T03:04:05Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Version, Commit, Date = tt.version, tt.commit, tt.date
			if got := String("gate"); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnstampedSaysDev(t *testing.T) {
	i := Get()
	if i.Version != "dev" || i.Commit == "" || i.Date == "" {
		t.Errorf("unstamped build info = %+v, want version dev and non-empty commit and date", i)
	}
}
