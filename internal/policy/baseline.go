package policy

import "github.com/buildgate/buildgate"

// Baseline names the image an evaluation was compared with: the findings
// it shares with that image are inherited, the others are new.
type Baseline struct {
	// Digest is the baseline image's digest.
	Digest string `json:"digest"`
	// Ref is how the baseline was named: a tag of the image, or what the
	// step was given ("debian:12", "auto: main").
	Ref string `json:"ref,omitempty"`
}

// Name is the baseline as reports show it: its reference and digest.
func (b *Baseline) Name() string {
	if b.Ref == "" || b.Ref == b.Digest {
		return b.Digest
	}
	return b.Ref + " (" + b.Digest + ")"
}

// IsNew reports whether a finding is new: not inherited from the
// evaluation's baseline. Without a baseline every finding is new.
func (e *Evaluation) IsNew(f *Finding) bool {
	return e.Baseline == nil || !f.Inherited
}

// CompareBaseline marks the findings the baseline image also has as
// inherited and records the baseline in the evaluation. A vulnerability
// finding is inherited when the baseline has a match of the same
// vulnerability in a package of the same name and type, whatever its
// version (an upgraded package that still carries the vulnerability is
// inherited). Any other finding is inherited when the baseline's own
// evaluation under the same bundle has a finding of the same gate,
// trigger and trigger id.
func (e *Evaluation) CompareBaseline(b Baseline, matches []buildgate.Match, base *Evaluation) {
	type vulnKey struct{ id, name, typ string }
	type findingKey struct{ gate, trigger, id string }
	vulns := make(map[vulnKey]bool, len(matches))
	for _, m := range matches {
		vulns[vulnKey{m.VulnerabilityID, m.PackageName, m.PackageType}] = true
	}
	others := map[findingKey]bool{}
	if base != nil {
		for _, f := range base.Findings {
			if f.Vulnerability == nil {
				others[findingKey{f.Gate, f.Trigger, f.TriggerID}] = true
			}
		}
	}
	e.Baseline = &b
	for i := range e.Findings {
		f := &e.Findings[i]
		if v := f.Vulnerability; v != nil {
			f.Inherited = vulns[vulnKey{v.VulnerabilityID, v.PackageName, v.PackageType}]
		} else {
			f.Inherited = others[findingKey{f.Gate, f.Trigger, f.TriggerID}]
		}
	}
}
