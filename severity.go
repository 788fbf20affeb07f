package buildgate

import (
	"fmt"
	"strings"
)

// Severity is a vulnerability's severity, ordered from Unknown to Critical.
type Severity int

// Severities in ascending order.
const (
	SeverityUnknown Severity = iota
	SeverityNegligible
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"Unknown", "Negligible", "Low", "Medium", "High", "Critical"}

// Severities lists every severity in ascending order.
func Severities() []Severity {
	return []Severity{SeverityUnknown, SeverityNegligible, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
}

// String returns the severity's name as Anchore and grype spell it: "High".
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "Unknown"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name in any case. It returns an error for
// names it does not know.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, strings.TrimSpace(name)) {
			return Severity(i), nil
		}
	}
	return SeverityUnknown, fmt.Errorf("unknown severity %q (want one of unknown, negligible, low, medium, high, critical)", name)
}

// SeverityOf reads a severity name leniently: unknown names are Unknown.
func SeverityOf(name string) Severity {
	s, _ := ParseSeverity(name)
	return s
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
