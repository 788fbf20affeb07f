package api

import "time"

// AdmissionScope is an admission rule's image scope: registry, repository
// and tag globs ("*" matches any run of characters; empty means "*").
type AdmissionScope struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
}

// AdmissionRuleRequest is the body of POST /v1/admission/rules and PUT
// /v1/admission/rules/{id}.
type AdmissionRuleRequest struct {
	Name            string            `json:"name"`
	Namespaces      []string          `json:"namespaces"`
	NamespaceLabels map[string]string `json:"namespace_labels"`
	Scope           AdmissionScope    `json:"scope"`
	// Mode is policy (the default), analysis or audit.
	Mode string `json:"mode"`
	// Policy is a policy bundle's id; empty means the active bundle.
	Policy string `json:"policy"`
	// Wait is a Go duration ("8s"); empty means the gate's default.
	Wait string `json:"wait"`
	// OnError is deny (the default) or allow.
	OnError  string `json:"on_error"`
	Position int    `json:"position"`
}

// AdmissionRule is a stored admission rule.
type AdmissionRule struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Namespaces      []string          `json:"namespaces"`
	NamespaceLabels map[string]string `json:"namespace_labels"`
	Scope           AdmissionScope    `json:"scope"`
	Mode            string            `json:"mode"`
	Policy          string            `json:"policy"`
	Wait            string            `json:"wait"`
	OnError         string            `json:"on_error"`
	Position        int               `json:"position"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
}

// AdmissionRuleList is the answer of GET /v1/admission/rules, in the
// order rules are tried.
type AdmissionRuleList struct {
	Rules []AdmissionRule `json:"rules"`
}

// AdmissionImage is one container image's judgement.
type AdmissionImage struct {
	Container string `json:"container"`
	Kind      string `json:"kind"`
	Image     string `json:"image"`
	Digest    string `json:"digest,omitempty"`
	Tag       string `json:"tag,omitempty"`
	Status    string `json:"status,omitempty"`
	Verdict   string `json:"verdict,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Allowed   bool   `json:"allowed"`
	Message   string `json:"message,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Mode      string `json:"mode,omitempty"`
}

// AdmissionDecision is a stored answer to an admission review.
type AdmissionDecision struct {
	ID        string           `json:"id"`
	CreatedAt time.Time        `json:"created_at"`
	UID       string           `json:"uid"`
	Cluster   string           `json:"cluster,omitempty"`
	Namespace string           `json:"namespace"`
	Kind      string           `json:"kind"`
	Name      string           `json:"name"`
	Operation string           `json:"operation"`
	User      string           `json:"user"`
	Images    []AdmissionImage `json:"images"`
	Allowed   bool             `json:"allowed"`
	WouldDeny bool             `json:"would_deny,omitempty"`
	Message   string           `json:"message,omitempty"`
	Warnings  []string         `json:"warnings,omitempty"`
	RuleID    string           `json:"rule_id,omitempty"`
	RuleName  string           `json:"rule_name,omitempty"`
	Mode      string           `json:"mode,omitempty"`
}

// AdmissionDecisionList is the answer of GET /v1/admission/decisions,
// newest first.
type AdmissionDecisionList struct {
	Decisions []AdmissionDecision `json:"decisions"`
}
