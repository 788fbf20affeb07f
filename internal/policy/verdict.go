package policy

import "time"

// Verdict is an evaluation as the gate stores and serves it: with the
// version of the bundle and the build time of the vulnerability DB it used.
type Verdict struct {
	Evaluation
	BundleVersion int        `json:"bundle_version"`
	DBBuilt       *time.Time `json:"db_built,omitempty"`
}
