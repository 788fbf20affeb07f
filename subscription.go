package buildgate

import "time"

// Subscription types, as Anchore names them. A subscription's key is a
// full tag ("docker.io/nginx:latest").
const (
	SubscriptionTagUpdate      = "tag_update"
	SubscriptionPolicyEval     = "policy_eval"
	SubscriptionVulnUpdate     = "vuln_update"
	SubscriptionAnalysisUpdate = "analysis_update"
)

// SubscriptionTypes lists the subscription types in Anchore's order.
func SubscriptionTypes() []string {
	return []string{SubscriptionTagUpdate, SubscriptionPolicyEval, SubscriptionVulnUpdate, SubscriptionAnalysisUpdate}
}

// Subscription asks to be told when something changes for a tag: a new
// digest (tag_update), a new verdict (policy_eval), new vulnerabilities
// (vuln_update) or a finished analysis (analysis_update).
type Subscription struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Type   string `json:"type"`
	Active bool   `json:"active"`
	// Channels receive the subscription's notifications (channel ids);
	// the gate's API sets them, Anchore's does not.
	Channels  []string  `json:"channels,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Origin is where an image came from: the index its manifest was chosen
// from (empty when none), the reference it is pulled by (empty for uploads
// and SBOMs), and when each of its tags was first seen.
type Origin struct {
	IndexDigest string
	PullRef     string
	TagsSeen    map[string]time.Time
}
