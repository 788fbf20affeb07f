package buildgate

import "time"

// Admission modes: what a rule admits.
const (
	// AdmissionPolicy admits images that are analysed and whose verdict
	// under the rule's policy is GO, or WARN with a warning.
	AdmissionPolicy = "policy"
	// AdmissionAnalysis admits images that are analysed, whatever the
	// verdict.
	AdmissionAnalysis = "analysis"
	// AdmissionAudit admits everything, records what would have been
	// denied and raises the admission_denied alert (break-glass).
	AdmissionAudit = "audit"
)

// AdmissionModes lists the admission modes.
func AdmissionModes() []string { return []string{AdmissionPolicy, AdmissionAnalysis, AdmissionAudit} }

// What an admission rule answers when it cannot judge in time or at all.
const (
	OnErrorDeny  = "deny"
	OnErrorAllow = "allow"
)

// AdmissionScope says which images a rule covers: globs ("*" matches any
// run of characters, "/" included; empty means "*") over the registry,
// repository and tag of an image reference, as in alert scopes.
type AdmissionScope struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
}

// AdmissionRule says how the images of objects in some namespaces are
// admitted. Rules are tried in Position order; the first whose namespace
// selector and scope hold an image judges it.
type AdmissionRule struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Namespaces are names or globs; empty means every namespace.
	Namespaces []string `json:"namespaces"`
	// NamespaceLabels must all be labels of the namespace (as the gate
	// last saw the Namespace object); empty means any labels.
	NamespaceLabels map[string]string `json:"namespace_labels"`
	Scope           AdmissionScope    `json:"scope"`
	Mode            string            `json:"mode"`
	// Policy is the policy bundle's id; empty means the active bundle.
	Policy string `json:"policy"`
	// Wait bounds the time spent on one review: waiting for an analysis,
	// resolving a tag, reading the store.
	Wait time.Duration `json:"wait"`
	// OnError is OnErrorDeny or OnErrorAllow: the answer when the rule
	// cannot judge (deadline past, registry or store error, bad input).
	OnError   string    `json:"on_error"`
	Position  int       `json:"position"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Container kinds of an admitted object.
const (
	ContainerRegular   = "container"
	ContainerInit      = "init"
	ContainerEphemeral = "ephemeral"
)

// AdmissionImage is the judgement of one container's image.
type AdmissionImage struct {
	Container string `json:"container"`
	// Kind is ContainerRegular, ContainerInit or ContainerEphemeral.
	Kind  string `json:"kind"`
	Image string `json:"image"`
	// Digest is the digest the image resolved to; Tag its full tag.
	Digest string `json:"digest,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Status is the image's analysis status when it was judged.
	Status string `json:"status,omitempty"`
	// Verdict is the final action under the rule's policy (stop, warn,
	// go), when one was computed.
	Verdict string `json:"verdict,omitempty"`
	Policy  string `json:"policy,omitempty"`
	Allowed bool   `json:"allowed"`
	Message string `json:"message,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

// AdmissionDecision is the gate's answer to one admission review.
type AdmissionDecision struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// UID is the AdmissionReview request's uid.
	UID       string           `json:"uid"`
	Cluster   string           `json:"cluster,omitempty"`
	Namespace string           `json:"namespace"`
	Kind      string           `json:"kind"`
	Name      string           `json:"name"`
	Operation string           `json:"operation"`
	User      string           `json:"user"`
	Images    []AdmissionImage `json:"images"`
	Allowed   bool             `json:"allowed"`
	// WouldDeny is set in audit mode when a rule in another mode would
	// have denied.
	WouldDeny bool     `json:"would_deny,omitempty"`
	Message   string   `json:"message,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	// RuleID, RuleName and Mode are of the rule that decided.
	RuleID   string `json:"rule_id,omitempty"`
	RuleName string `json:"rule_name,omitempty"`
	Mode     string `json:"mode,omitempty"`
}

// AdmissionDecisionFilter narrows a list of decisions.
type AdmissionDecisionFilter struct {
	Cluster   string
	Namespace string
	// Allowed, when set, keeps only admitted (true) or denied decisions.
	Allowed *bool
	Limit   int
}
