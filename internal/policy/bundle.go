package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/buildgate/buildgate"
)

// BundleVersion is the only bundle (and policy, and allowlist) version
// Anchore Engine 1.x and this package accept.
const BundleVersion = "1_0"

// Bundle is an Anchore Engine policy bundle, version 1_0: policies, the
// allowlists ("whitelists") that waive their findings, the mappings that
// choose policies by image, and image-level allow and deny lists.
//
// It marshals with Anchore's field names (whitelists, whitelisted_images,
// blacklisted_images) so anchore-cli round-trips it, and also reads
// allowlists, allowlisted_images and denylisted_images.
type Bundle struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	Comment           string      `json:"comment"`
	Version           string      `json:"version"`
	Policies          []Policy    `json:"policies"`
	Allowlists        []Allowlist `json:"whitelists"`
	Mappings          []Mapping   `json:"mappings"`
	AllowlistedImages []ImageRef  `json:"whitelisted_images"`
	DenylistedImages  []ImageRef  `json:"blacklisted_images"`
}

// Policy is a named list of rules.
type Policy struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Comment string `json:"comment"`
	Version string `json:"version"`
	Rules   []Rule `json:"rules"`
}

// Rule fires a gate's trigger with parameters; Action is GO, WARN or STOP
// (any case).
type Rule struct {
	ID      string  `json:"id"`
	Gate    string  `json:"gate"`
	Trigger string  `json:"trigger"`
	Action  string  `json:"action"`
	Params  []Param `json:"params"`
}

// Param is one rule parameter. Values are strings in Anchore bundles; on
// input numbers and booleans are accepted too (YAML turned into JSON
// often carries them) and kept as their literal text.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// UnmarshalJSON reads a parameter whose value is a string, a number, a
// boolean or null.
func (p *Param) UnmarshalJSON(b []byte) error {
	var aux struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	p.Name = aux.Name
	p.Value = ""
	v := bytes.TrimSpace(aux.Value)
	switch {
	case len(v) == 0 || string(v) == "null":
	case v[0] == '"':
		if err := json.Unmarshal(v, &p.Value); err != nil {
			return err
		}
	case string(v) == "true" || string(v) == "false" || v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		p.Value = string(v)
	default:
		return fmt.Errorf("parameter %q: value must be a string", aux.Name)
	}
	return nil
}

// Allowlist (Anchore: whitelist) waives the findings its items match.
type Allowlist struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Comment string          `json:"comment"`
	Items   []AllowlistItem `json:"items"`
}

// AllowlistItem waives findings of a gate whose trigger id matches
// TriggerID, a glob where * matches anything (or a regular expression
// after "regexp:"). An item whose ExpiresOn (RFC 3339) has passed no
// longer applies.
type AllowlistItem struct {
	ID        string `json:"id"`
	Gate      string `json:"gate"`
	TriggerID string `json:"trigger_id"`
	ExpiresOn string `json:"expires_on,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Mapping chooses the policies and allowlists for images whose registry,
// repository and tag (or digest) match. Mappings are tried in order; the
// first match wins.
type Mapping struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Registry   string        `json:"registry"`
	Repository string        `json:"repository"`
	Image      ImageSelector `json:"image"`
	// PolicyID is Anchore's single-policy form; PolicyIDs the list form.
	// A mapping uses one or the other.
	PolicyID     string   `json:"policy_id,omitempty"`
	PolicyIDs    []string `json:"policy_ids,omitempty"`
	AllowlistIDs []string `json:"whitelist_ids"`
}

// UnmarshalJSON reads a mapping, accepting allowlist_ids for whitelist_ids.
func (m *Mapping) UnmarshalJSON(b []byte) error {
	type plain Mapping
	var aux struct {
		plain
		AllowlistIDs2 []string `json:"allowlist_ids"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*m = Mapping(aux.plain)
	m.AllowlistIDs = append(m.AllowlistIDs, aux.AllowlistIDs2...)
	return nil
}

// Policies returns the ids of the policies the mapping names, in order.
func (m Mapping) Policies() []string {
	if m.PolicyID != "" {
		return append([]string{m.PolicyID}, m.PolicyIDs...)
	}
	return m.PolicyIDs
}

// ImageSelector picks images by tag (a glob), digest or id.
type ImageSelector struct {
	Type  string `json:"type"` // tag, digest or id
	Value string `json:"value"`
}

// Image selector types.
const (
	ImageTypeTag    = "tag"
	ImageTypeDigest = "digest"
	ImageTypeID     = "id"
)

// ImageRef names images for the bundle's allow and deny lists.
type ImageRef struct {
	ID         string        `json:"id,omitempty"`
	Name       string        `json:"name"`
	Registry   string        `json:"registry"`
	Repository string        `json:"repository"`
	Image      ImageSelector `json:"image"`
}

// bundleJSON is the wire form, with both Anchore's and our spellings.
type bundleJSON struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	Comment           string      `json:"comment"`
	Version           string      `json:"version"`
	Policies          []Policy    `json:"policies"`
	Whitelists        []Allowlist `json:"whitelists"`
	Allowlists        []Allowlist `json:"allowlists"`
	Mappings          []Mapping   `json:"mappings"`
	WhitelistedImages []ImageRef  `json:"whitelisted_images"`
	AllowlistedImages []ImageRef  `json:"allowlisted_images"`
	BlacklistedImages []ImageRef  `json:"blacklisted_images"`
	DenylistedImages  []ImageRef  `json:"denylisted_images"`
}

// UnmarshalJSON reads a bundle in Anchore's spelling or ours; when both
// spellings of a list are present their entries are concatenated.
func (b *Bundle) UnmarshalJSON(data []byte) error {
	var aux bundleJSON
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*b = Bundle{
		ID:                aux.ID,
		Name:              aux.Name,
		Comment:           aux.Comment,
		Version:           aux.Version,
		Policies:          aux.Policies,
		Allowlists:        append(aux.Whitelists, aux.Allowlists...),
		Mappings:          aux.Mappings,
		AllowlistedImages: append(aux.WhitelistedImages, aux.AllowlistedImages...),
		DenylistedImages:  append(aux.BlacklistedImages, aux.DenylistedImages...),
	}
	b.normalize()
	return nil
}

// MarshalJSON writes the bundle in Anchore's spelling, with every list
// present (empty lists as []).
func (b Bundle) MarshalJSON() ([]byte, error) {
	type plain Bundle
	c := b.clone()
	c.normalize()
	return json.Marshal(plain(c))
}

// normalize replaces nil lists with empty ones so that a bundle, its JSON
// and the bundle parsed back from that JSON are equal.
func (b *Bundle) normalize() {
	b.Policies = nonNil(b.Policies)
	b.Allowlists = nonNil(b.Allowlists)
	b.Mappings = nonNil(b.Mappings)
	b.AllowlistedImages = nonNil(b.AllowlistedImages)
	b.DenylistedImages = nonNil(b.DenylistedImages)
	for i := range b.Policies {
		p := &b.Policies[i]
		p.Rules = nonNil(p.Rules)
		for j := range p.Rules {
			p.Rules[j].Params = nonNil(p.Rules[j].Params)
		}
	}
	for i := range b.Allowlists {
		b.Allowlists[i].Items = nonNil(b.Allowlists[i].Items)
	}
	for i := range b.Mappings {
		b.Mappings[i].AllowlistIDs = nonNil(b.Mappings[i].AllowlistIDs)
		b.Mappings[i].PolicyIDs = nonNil(b.Mappings[i].PolicyIDs)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// clone returns a deep copy of b.
func (b Bundle) clone() Bundle {
	c := b
	c.Policies = append([]Policy(nil), b.Policies...)
	for i := range c.Policies {
		c.Policies[i].Rules = append([]Rule(nil), b.Policies[i].Rules...)
		for j := range c.Policies[i].Rules {
			c.Policies[i].Rules[j].Params = append([]Param(nil), b.Policies[i].Rules[j].Params...)
		}
	}
	c.Allowlists = append([]Allowlist(nil), b.Allowlists...)
	for i := range c.Allowlists {
		c.Allowlists[i].Items = append([]AllowlistItem(nil), b.Allowlists[i].Items...)
	}
	c.Mappings = append([]Mapping(nil), b.Mappings...)
	for i := range c.Mappings {
		c.Mappings[i].PolicyIDs = append([]string(nil), b.Mappings[i].PolicyIDs...)
		c.Mappings[i].AllowlistIDs = append([]string(nil), b.Mappings[i].AllowlistIDs...)
	}
	c.AllowlistedImages = append([]ImageRef(nil), b.AllowlistedImages...)
	c.DenylistedImages = append([]ImageRef(nil), b.DenylistedImages...)
	return c
}

// Clone returns a deep copy of the bundle.
func (b *Bundle) Clone() *Bundle {
	c := b.clone()
	return &c
}

// ParseBundle decodes a JSON bundle and validates it. Decoding errors are
// *buildgate.Error with code EINVALID; validation errors are *ValidationError
// (whose chain also holds an EINVALID *buildgate.Error).
func ParseBundle(data []byte) (*Bundle, error) {
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "decoding policy bundle: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}
