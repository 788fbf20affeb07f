package report

import (
	"io"
	"slices"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// JSONSchemaID names the layout of the JSON summary; it changes only when
// a field is removed or changes meaning.
const JSONSchemaID = "buildgate/report/v1"

// Summary is the JSON summary (buildgate.json): the verdict, the image,
// counts and the evaluation with every finding. Field names are stable.
type Summary struct {
	Schema string `json:"schema"`
	// Verdict is the final action: "stop", "warn" or "go".
	Verdict string        `json:"verdict"`
	Passed  bool          `json:"passed"`
	Status  string        `json:"status"` // "pass" or "fail"
	Reason  policy.Reason `json:"reason"`
	Image   SummaryImage  `json:"image"`
	GateURL string        `json:"gate_url,omitempty"`
	Scanner SummaryTool   `json:"scanner"`
	DB      SummaryDB     `json:"db"`
	Counts  policy.Counts `json:"counts"`
	// Vulnerabilities counts by severity the findings with a vulnerability
	// (by rule action) and every match of the image.
	Vulnerabilities SummarySeverities  `json:"vulnerabilities"`
	Evaluation      *policy.Evaluation `json:"evaluation"`
}

// SummaryImage describes the image in the JSON summary.
type SummaryImage struct {
	Digest             string   `json:"digest"`
	Ref                string   `json:"ref"`
	Tag                string   `json:"tag,omitempty"`
	Tags               []string `json:"tags"`
	Distro             string   `json:"distro,omitempty"`
	DistroVersion      string   `json:"distro_version,omitempty"`
	OS                 string   `json:"os,omitempty"`
	Arch               string   `json:"arch,omitempty"`
	DockerfilePath     string   `json:"dockerfile_path,omitempty"`
	DockerfileProvided bool     `json:"dockerfile_provided"`
	Packages           int      `json:"packages"`
}

// SummaryTool describes the scanner in the JSON summary.
type SummaryTool struct {
	Name      string     `json:"name"`
	Version   string     `json:"version,omitempty"`
	Vendor    string     `json:"vendor"`
	StartTime *time.Time `json:"start_time,omitempty"`
	EndTime   *time.Time `json:"end_time,omitempty"`
}

// SummaryDB describes the vulnerability DB in the JSON summary.
type SummaryDB struct {
	SchemaVersion string     `json:"schema_version,omitempty"`
	Built         *time.Time `json:"built,omitempty"`
}

// SummarySeverities are counts by severity, per finding action and for
// the whole image.
type SummarySeverities struct {
	Stop        SeverityCounts `json:"stop"`
	Warn        SeverityCounts `json:"warn"`
	Go          SeverityCounts `json:"go"`
	Allowlisted SeverityCounts `json:"allowlisted"`
	Image       SeverityCounts `json:"image"`
}

// SeverityCounts count vulnerabilities by severity.
type SeverityCounts struct {
	Critical   int `json:"critical"`
	High       int `json:"high"`
	Medium     int `json:"medium"`
	Low        int `json:"low"`
	Negligible int `json:"negligible"`
	Unknown    int `json:"unknown"`
	Total      int `json:"total"`
}

func (c severityCounts) export() SeverityCounts {
	return SeverityCounts{
		Critical: c[buildgate.SeverityCritical], High: c[buildgate.SeverityHigh],
		Medium: c[buildgate.SeverityMedium], Low: c[buildgate.SeverityLow],
		Negligible: c[buildgate.SeverityNegligible], Unknown: c[buildgate.SeverityUnknown],
		Total: c.total(),
	}
}

// NewSummary builds the JSON summary of the input. The evaluation is
// copied with its findings in report order and nil lists made empty.
func NewSummary(in Input) (*Summary, error) {
	e := in.Evaluation
	if e == nil {
		return nil, errNoEvaluation(FormatJSON)
	}
	ev := *e
	ev.Findings = make([]policy.Finding, 0, len(e.Findings))
	for _, f := range sortedFindings(e, in.FailOn) {
		ev.Findings = append(ev.Findings, *f)
	}
	ev.PolicyIDs = nonNil(ev.PolicyIDs)
	ev.AllowlistIDs = nonNil(ev.AllowlistIDs)

	var sev [4]severityCounts
	for i := range e.Findings {
		f := &e.Findings[i]
		if f.Vulnerability == nil {
			continue
		}
		k := 0
		switch {
		case f.Allowlisted != nil:
			k = 3
		case f.Action == policy.ActionWarn:
			k = 1
		case f.Action == policy.ActionGo:
			k = 2
		}
		sev[k].add(f.Vulnerability.Severity)
	}
	s := &Summary{
		Schema:  JSONSchemaID,
		Verdict: e.FinalAction.String(),
		Passed:  e.Passed(),
		Status:  e.Status(),
		Reason:  e.Reason,
		Image: SummaryImage{
			Digest:             in.digest(),
			Ref:                in.ref(),
			Tag:                in.tag(),
			Tags:               nonNil(slices.Clone(in.Image.Tags)),
			Distro:             in.Image.Distro,
			DistroVersion:      in.Image.DistroVersion,
			OS:                 in.Image.OS,
			Arch:               in.Image.Arch,
			DockerfilePath:     in.Image.DockerfilePath,
			DockerfileProvided: in.Image.Dockerfile != "",
			Packages:           len(in.Packages),
		},
		GateURL: in.GateURL,
		Scanner: SummaryTool{
			Name:      in.scannerName(),
			Version:   in.scannerVersion(),
			Vendor:    in.scannerVendor(),
			StartTime: timePtr(in.Scanner.StartTime),
			EndTime:   timePtr(in.Scanner.EndTime),
		},
		DB:     SummaryDB{SchemaVersion: in.DB.SchemaVersion, Built: timePtr(in.DB.Built)},
		Counts: e.Counts(),
		Vulnerabilities: SummarySeverities{
			Stop: sev[0].export(), Warn: sev[1].export(), Go: sev[2].export(), Allowlisted: sev[3].export(),
			Image: matchCounts(in.Matches).export(),
		},
		Evaluation: &ev,
	}
	return s, nil
}

// JSON writes the JSON summary (see Summary).
func JSON(w io.Writer, in Input) error {
	s, err := NewSummary(in)
	if err != nil {
		return err
	}
	data, err := marshalJSON(s, "encoding json report")
	if err != nil {
		return err
	}
	return write(w, data, FormatJSON)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
