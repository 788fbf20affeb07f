package buildgate

import (
	"encoding/json"
	"testing"
)

func TestSeverityRoundTrip(t *testing.T) {
	for _, s := range Severities() {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got Severity
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Errorf("round trip of %v gave %v", s, got)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity accepted an unknown name")
	}
	if SeverityOf("HIGH") != SeverityHigh || !(SeverityHigh > SeverityMedium) {
		t.Error("severities are not ordered by name")
	}
}

func TestIsOSType(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		want bool
	}{
		{"deb", "deb", true},
		{"rpm upper", "RPM", true},
		{"npm", "npm", false},
		{"go", "go-module", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsOSType(tt.typ); got != tt.want {
				t.Errorf("IsOSType(%q) = %v, want %v", tt.typ, got, tt.want)
			}
		})
	}
}
