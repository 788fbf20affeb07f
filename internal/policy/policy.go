// Package policy is buildgate's policy engine: it reads Anchore Engine
// compatible policy bundles (version 1_0), validates them against the
// machine-readable gate definitions, and evaluates them against the facts
// of an analysed image.
//
// Evaluation is pure: Evaluate takes a bundle, the image's facts, the
// vulnerability DB description and the time to evaluate at, and returns an
// Evaluation. Nothing here reads clocks, files or the network.
//
// The package imports only the standard library and the domain package
// buildgate. Bundles
// arrive as JSON; YAML is converted at the HTTP edge.
//
// Where Anchore's behaviour is known it is followed, down to message
// wording, so hash-based trigger ids (hex MD5 of gate, trigger and
// message) and therefore existing allowlist items keep matching. Choices
// where Anchore is silent or buggy are documented on the trigger
// implementations (eval* functions) and on Evaluate.
package policy

import (
	"fmt"
	"strings"
)

// Action is a rule's or an evaluation's outcome. Actions are ordered
// STOP < WARN < GO; a final action is the minimum of the actions that
// apply. The zero value is ActionStop, so an unset action fails closed.
type Action int

// Actions in ascending order.
const (
	ActionStop Action = iota
	ActionWarn
	ActionGo
)

var actionNames = [...]string{"stop", "warn", "go"}

// String returns the action's lower-case name: "stop", "warn" or "go".
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "stop"
	}
	return actionNames[a]
}

// ParseAction reads an action name in any case ("STOP", "warn", "Go").
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Action(i), nil
		}
	}
	return ActionStop, fmt.Errorf("unknown action %q (want one of GO, WARN, STOP)", s)
}

// MarshalText writes the action's lower-case name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action name in any case.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Reason says why an evaluation reached its final action.
type Reason string

// Reasons for a final action.
const (
	// ReasonPolicyEvaluation: the final action is the policies' verdict.
	ReasonPolicyEvaluation Reason = "policy_evaluation"
	// ReasonAllowlistedImage: the image matched whitelisted_images (GO).
	ReasonAllowlistedImage Reason = "allowlisted_image"
	// ReasonDenylistedImage: the image matched blacklisted_images (STOP).
	ReasonDenylistedImage Reason = "denylisted_image"
)

// Anchore returns the reason as Anchore Engine's /check response spells
// it: "policy_evaluation", "whitelisted" or "blacklisted".
func (r Reason) Anchore() string {
	switch r {
	case ReasonAllowlistedImage:
		return "whitelisted"
	case ReasonDenylistedImage:
		return "blacklisted"
	}
	return string(ReasonPolicyEvaluation)
}
