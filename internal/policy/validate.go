package policy

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Problem is one thing wrong with a bundle, located by the ids of the
// policy and rule (or allowlist and item, or mapping) and the gate,
// trigger and parameter concerned.
type Problem struct {
	PolicyID    string `json:"policy_id,omitempty"`
	RuleID      string `json:"rule_id,omitempty"`
	AllowlistID string `json:"allowlist_id,omitempty"`
	ItemID      string `json:"item_id,omitempty"`
	MappingID   string `json:"mapping_id,omitempty"`
	// Section locates what has no id, e.g. "rules[3]" or "blacklisted_images[0]".
	Section   string `json:"section,omitempty"`
	Gate      string `json:"gate,omitempty"`
	Trigger   string `json:"trigger,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Message   string `json:"message"`
}

// String renders the problem for people, e.g.
// `policy "default" rule "r1": vulnerabilities/package: parameter "severity": "urgent" is not one of ...`.
func (p Problem) String() string {
	var loc []string
	if p.PolicyID != "" {
		loc = append(loc, fmt.Sprintf("policy %q", p.PolicyID))
	}
	if p.RuleID != "" {
		loc = append(loc, fmt.Sprintf("rule %q", p.RuleID))
	}
	if p.AllowlistID != "" {
		loc = append(loc, fmt.Sprintf("allowlist %q", p.AllowlistID))
	}
	if p.ItemID != "" {
		loc = append(loc, fmt.Sprintf("item %q", p.ItemID))
	}
	if p.MappingID != "" {
		loc = append(loc, fmt.Sprintf("mapping %q", p.MappingID))
	}
	if p.Section != "" {
		loc = append(loc, p.Section)
	}
	if len(loc) == 0 {
		loc = append(loc, "bundle")
	}
	segs := []string{strings.Join(loc, " ")}
	if p.Gate != "" {
		gt := p.Gate
		if p.Trigger != "" {
			gt += "/" + p.Trigger
		}
		segs = append(segs, gt)
	}
	if p.Parameter != "" {
		segs = append(segs, fmt.Sprintf("parameter %q", p.Parameter))
	}
	segs = append(segs, p.Message)
	return strings.Join(segs, ": ")
}

// ValidationError lists everything wrong with a bundle. Its chain holds an
// *buildgate.Error with code EINVALID, so the HTTP edge answers 400.
type ValidationError struct {
	Problems []Problem `json:"problems"`
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the error as an EINVALID *buildgate.Error.
func (e *ValidationError) Unwrap() error {
	return &buildgate.Error{Code: buildgate.EINVALID, Message: e.Error()}
}

// Validate checks the bundle against the gate definitions and Anchore's
// rules for bundles, and returns a *ValidationError listing every problem,
// or nil.
func (b *Bundle) Validate() error {
	if _, probs := compile(b); len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// compiled is a validated bundle made ready to evaluate.
type compiled struct {
	bundle     *Bundle
	policies   map[string]*compiledPolicy
	allowlists map[string]*compiledAllowlist
	mappings   []compiledSelector
	allowImgs  []compiledSelector
	denyImgs   []compiledSelector
}

type compiledPolicy struct {
	policy *Policy
	rules  []*compiledRule
}

type compiledRule struct {
	policyID    string
	rule        *Rule
	gate        *GateDef
	trig        *TriggerDef
	triggerName string // as the rule spells it, lower-case
	action      Action
	p           params
	eval        evalFunc
}

// params are a rule's validated parameter values, defaults filled in.
type params struct {
	vals  map[string]string
	given map[string]bool
	res   map[string]*regexp.Regexp
}

func (p params) has(name string) bool { return p.given[name] }
func (p params) str(name string) string {
	return p.vals[name]
}
func (p params) boolean(name string) bool {
	v, _ := strconv.ParseBool(p.vals[name])
	return v
}
func (p params) integer(name string) int64 {
	v, _ := strconv.ParseInt(strings.TrimSpace(p.vals[name]), 10, 64)
	return v
}
func (p params) float(name string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSpace(p.vals[name]), 64)
	return v
}
func (p params) list(name string) []string { return splitList(p.vals[name]) }
func (p params) re(name string) *regexp.Regexp {
	return p.res[name]
}

// splitList splits a comma list, trimming items and dropping empty ones.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

type compiledSelector struct {
	id, name   string
	registry   pattern
	repository pattern
	typ        string
	value      pattern
	raw        string
	mapping    *Mapping
	ref        *ImageRef
}

type compiledAllowlist struct {
	list  *Allowlist
	items []compiledItem
	// keyed holds the indexes of items with a literal trigger id (or a
	// literal vulnerability part), by that id; wild the others.
	keyed map[string][]int
	wild  []int
	buf   []int // scratch for candidates; an evaluation is single-threaded
}

type compiledItem struct {
	item    *AllowlistItem
	gate    string
	pat     pattern
	split   bool // trigger id is <vulnerability pattern>+<package pattern>
	vulnPat pattern
	pkgPat  pattern
	expires *time.Time
}

// compile validates the bundle and builds its executable form.
func compile(b *Bundle) (*compiled, []Problem) {
	var probs []Problem
	add := func(p Problem) { probs = append(probs, p) }
	if b == nil {
		return nil, []Problem{{Message: "no policy bundle"}}
	}
	c := &compiled{
		bundle:     b,
		policies:   map[string]*compiledPolicy{},
		allowlists: map[string]*compiledAllowlist{},
	}
	if strings.TrimSpace(b.ID) == "" {
		add(Problem{Message: "id is empty"})
	}
	if b.Version != BundleVersion {
		add(Problem{Message: versionMessage(b.Version)})
	}

	for i := range b.Policies {
		pol := &b.Policies[i]
		section := ""
		if strings.TrimSpace(pol.ID) == "" {
			section = fmt.Sprintf("policies[%d]", i)
			add(Problem{Section: section, Message: "id is empty"})
		} else if _, dup := c.policies[pol.ID]; dup {
			add(Problem{PolicyID: pol.ID, Message: "duplicate policy id"})
		}
		if pol.Version != BundleVersion {
			add(Problem{PolicyID: pol.ID, Section: section, Message: versionMessage(pol.Version)})
		}
		cp := &compiledPolicy{policy: pol}
		ruleIDs := map[string]bool{}
		for j := range pol.Rules {
			r := &pol.Rules[j]
			where := Problem{PolicyID: pol.ID, RuleID: r.ID}
			if section != "" || r.ID == "" {
				where.Section = strings.TrimSpace(section + fmt.Sprintf(" rules[%d]", j))
			}
			if r.ID != "" {
				if ruleIDs[r.ID] {
					p := where
					p.Message = "duplicate rule id"
					add(p)
				}
				ruleIDs[r.ID] = true
			}
			cr, rp := compileRule(pol.ID, r, where)
			probs = append(probs, rp...)
			if cr != nil {
				cp.rules = append(cp.rules, cr)
			}
		}
		if _, dup := c.policies[pol.ID]; !dup {
			c.policies[pol.ID] = cp
		}
	}

	for i := range b.Allowlists {
		al := &b.Allowlists[i]
		where := Problem{AllowlistID: al.ID}
		if strings.TrimSpace(al.ID) == "" {
			where.Section = fmt.Sprintf("whitelists[%d]", i)
			p := where
			p.Message = "id is empty"
			add(p)
		} else if _, dup := c.allowlists[al.ID]; dup {
			p := where
			p.Message = "duplicate whitelist id"
			add(p)
		}
		if al.Version != BundleVersion {
			p := where
			p.Message = versionMessage(al.Version)
			add(p)
		}
		ca, ap := compileAllowlist(al, where)
		probs = append(probs, ap...)
		if _, dup := c.allowlists[al.ID]; !dup {
			c.allowlists[al.ID] = ca
		}
	}

	mappingIDs := map[string]bool{}
	for i := range b.Mappings {
		m := &b.Mappings[i]
		where := Problem{MappingID: m.ID}
		if m.ID == "" {
			where.Section = fmt.Sprintf("mappings[%d]", i)
		} else if mappingIDs[m.ID] {
			p := where
			p.Message = "duplicate mapping id"
			add(p)
		}
		mappingIDs[m.ID] = true
		sel, sp := compileSelector(m.ID, m.Name, m.Registry, m.Repository, m.Image, where)
		probs = append(probs, sp...)
		sel.mapping = m
		switch {
		case m.PolicyID != "" && len(m.PolicyIDs) > 0:
			p := where
			p.Message = "sets both policy_id and policy_ids"
			add(p)
		case m.PolicyID == "" && len(m.PolicyIDs) == 0:
			p := where
			p.Message = "names no policy (set policy_id or policy_ids)"
			add(p)
		}
		for _, pid := range m.Policies() {
			if _, ok := c.policies[pid]; !ok {
				p := where
				p.Message = fmt.Sprintf("policy %q does not exist", pid)
				add(p)
			}
		}
		for _, wid := range m.AllowlistIDs {
			if _, ok := c.allowlists[wid]; !ok {
				p := where
				p.Message = fmt.Sprintf("whitelist %q does not exist", wid)
				add(p)
			}
		}
		c.mappings = append(c.mappings, sel)
	}

	for _, list := range []struct {
		name string
		refs []ImageRef
		out  *[]compiledSelector
	}{
		{"whitelisted_images", b.AllowlistedImages, &c.allowImgs},
		{"blacklisted_images", b.DenylistedImages, &c.denyImgs},
	} {
		for i := range list.refs {
			ref := &list.refs[i]
			where := Problem{Section: fmt.Sprintf("%s[%d]", list.name, i)}
			sel, sp := compileSelector(ref.ID, ref.Name, ref.Registry, ref.Repository, ref.Image, where)
			probs = append(probs, sp...)
			sel.ref = ref
			*list.out = append(*list.out, sel)
		}
	}
	return c, probs
}

func versionMessage(v string) string {
	if v == "" {
		return fmt.Sprintf("version is missing (want %s)", BundleVersion)
	}
	return fmt.Sprintf("version %q is not supported (want %s)", v, BundleVersion)
}

func compileSelector(id, name, registry, repository string, img ImageSelector, where Problem) (compiledSelector, []Problem) {
	var probs []Problem
	add := func(msg string) {
		p := where
		p.Message = msg
		probs = append(probs, p)
	}
	sel := compiledSelector{id: id, name: name, typ: strings.ToLower(strings.TrimSpace(img.Type)), raw: img.Value}
	var err error
	for _, f := range []struct {
		field string
		value string
		out   *pattern
	}{
		{"registry", registry, &sel.registry},
		{"repository", repository, &sel.repository},
	} {
		if strings.TrimSpace(f.value) == "" {
			add(f.field + " is empty (use * for any)")
			continue
		}
		if *f.out, err = compilePattern(f.value); err != nil {
			add(fmt.Sprintf("%s %q does not compile: %v", f.field, f.value, err))
		}
	}
	switch sel.typ {
	case ImageTypeTag, ImageTypeDigest, ImageTypeID:
	default:
		add(fmt.Sprintf("image type %q is not one of tag, digest, id", img.Type))
	}
	if strings.TrimSpace(img.Value) == "" {
		add("image value is empty (use * for any tag)")
	} else if sel.typ == ImageTypeTag {
		if sel.value, err = compilePattern(img.Value); err != nil {
			add(fmt.Sprintf("image value %q does not compile: %v", img.Value, err))
		}
	}
	return sel, probs
}

func compileAllowlist(al *Allowlist, where Problem) (*compiledAllowlist, []Problem) {
	var probs []Problem
	ca := &compiledAllowlist{list: al, keyed: map[string][]int{}}
	itemIDs := map[string]bool{}
	for i := range al.Items {
		it := &al.Items[i]
		w := where
		w.ItemID = it.ID
		if it.ID == "" {
			w.Section = strings.TrimSpace(w.Section + fmt.Sprintf(" items[%d]", i))
		}
		add := func(msg string) {
			p := w
			p.Message = msg
			probs = append(probs, p)
		}
		if it.ID != "" {
			if itemIDs[it.ID] {
				add("duplicate item id")
			}
			itemIDs[it.ID] = true
		}
		ci := compiledItem{item: it, gate: strings.ToLower(strings.TrimSpace(it.Gate))}
		if ci.gate == "" {
			add("gate is empty")
		}
		if strings.TrimSpace(it.TriggerID) == "" {
			add("trigger_id is empty (use * for any)")
		}
		var err error
		if ci.pat, err = compilePattern(it.TriggerID); err != nil {
			add(fmt.Sprintf("trigger_id %q does not compile: %v", it.TriggerID, err))
		}
		if ci.pat.re == nil {
			if v, pk, ok := strings.Cut(it.TriggerID, "+"); ok {
				ci.split = true
				ci.vulnPat = globPattern(v)
				ci.pkgPat = globPattern(pk)
			}
		}
		if it.ExpiresOn != "" {
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(it.ExpiresOn))
			if err != nil {
				add(fmt.Sprintf("expires_on %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", it.ExpiresOn))
			} else {
				ci.expires = &t
			}
		}
		ca.items = append(ca.items, ci)
		switch {
		case ci.split && ci.vulnPat.literal():
			ca.keyed[ci.vulnPat.glob] = append(ca.keyed[ci.vulnPat.glob], i)
		case ci.pat.literal():
			ca.keyed[ci.pat.glob] = append(ca.keyed[ci.pat.glob], i)
		default:
			ca.wild = append(ca.wild, i)
		}
	}
	return ca, probs
}

func compileRule(policyID string, r *Rule, where Problem) (*compiledRule, []Problem) {
	var probs []Problem
	add := func(param, msg string) {
		p := where
		p.Parameter = param
		p.Message = msg
		probs = append(probs, p)
	}
	where.Gate = strings.ToLower(strings.TrimSpace(r.Gate))
	where.Trigger = strings.ToLower(strings.TrimSpace(r.Trigger))

	action, err := ParseAction(r.Action)
	if err != nil {
		add("", fmt.Sprintf("action %q is not one of GO, WARN, STOP", r.Action))
	}
	g, t := lookup(r.Gate, r.Trigger)
	if g == nil {
		names := make([]string, len(gates))
		for i, gd := range gates {
			names[i] = gd.Name
		}
		add("", fmt.Sprintf("unknown gate %q (want one of %s)", r.Gate, strings.Join(names, ", ")))
		return nil, probs
	}
	if t == nil {
		var names []string
		for _, td := range g.Triggers {
			names = append(names, td.Name)
		}
		add("", fmt.Sprintf("unknown trigger %q for gate %s (want one of %s)", r.Trigger, g.Name, strings.Join(names, ", ")))
		return nil, probs
	}

	p := params{vals: map[string]string{}, given: map[string]bool{}, res: map[string]*regexp.Regexp{}}
	for _, prm := range r.Params {
		name := strings.ToLower(strings.TrimSpace(prm.Name))
		def := t.param(name)
		if def == nil {
			var names []string
			for _, pd := range t.Params {
				names = append(names, pd.Name)
			}
			want := "it takes none"
			if len(names) > 0 {
				want = "want one of " + strings.Join(names, ", ")
			}
			add(prm.Name, fmt.Sprintf("unknown parameter (%s)", want))
			continue
		}
		if p.given[name] {
			add(name, "given more than once")
			continue
		}
		v := strings.TrimSpace(prm.Value)
		if v == "" {
			continue // an empty value reads as absent, as in Anchore
		}
		canon, re, msg := checkValue(def, v)
		if msg != "" {
			add(name, msg)
			continue
		}
		p.vals[name] = canon
		p.given[name] = true
		if re != nil {
			p.res[name] = re
		}
	}
	for _, def := range t.Params {
		if p.given[def.Name] {
			continue
		}
		if def.Required {
			add(def.Name, "is required")
			continue
		}
		if def.Default != "" {
			p.vals[def.Name] = def.Default
		}
	}
	key := g.Name + "/" + t.Name
	if check := crossChecks[key]; check != nil {
		for _, pr := range check(&p) {
			add(pr.Parameter, pr.Message)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return &compiledRule{
		policyID:    policyID,
		rule:        r,
		gate:        g,
		trig:        t,
		triggerName: where.Trigger,
		action:      action,
		p:           p,
		eval:        evaluators[key],
	}, nil
}

// checkValue checks a parameter value against its definition. It returns
// the canonical value (an enum's spelling from its definition), a
// compiled regular expression for regex parameters, and a problem message
// ("" if the value is good).
func checkValue(def *ParamDef, v string) (string, *regexp.Regexp, string) {
	switch def.Type {
	case TypeEnum:
		for _, a := range def.Allowed {
			if strings.EqualFold(a, v) {
				return a, nil, ""
			}
		}
		return "", nil, fmt.Sprintf("%q is not one of %s", v, strings.Join(def.Allowed, ", "))
	case TypeInt:
		return v, nil, checkNumber(def, v, true)
	case TypeFloat:
		return v, nil, checkNumber(def, v, false)
	case TypeBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return "", nil, fmt.Sprintf("%q is not true or false", v)
		}
		return v, nil, ""
	case TypeRegex:
		re, err := compileRegex(v)
		if err != nil {
			return "", nil, fmt.Sprintf("regular expression %q does not compile: %v", v, err)
		}
		return v, re, ""
	case TypeList:
		items := splitList(v)
		if len(items) == 0 {
			return "", nil, "list is empty"
		}
		for _, item := range items {
			if def.ItemType == TypeInt {
				if msg := checkNumber(def, item, true); msg != "" {
					return "", nil, "item " + msg
				}
			}
			if len(def.Allowed) > 0 {
				found := false
				for _, a := range def.Allowed {
					found = found || strings.EqualFold(a, item)
				}
				if !found {
					return "", nil, fmt.Sprintf("item %q is not one of %s", item, strings.Join(def.Allowed, ", "))
				}
			}
		}
		return v, nil, ""
	}
	return v, nil, ""
}

func checkNumber(def *ParamDef, v string, whole bool) string {
	var f float64
	if whole {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Sprintf("%q is not a whole number", v)
		}
		f = float64(n)
	} else {
		var err error
		f, err = strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprintf("%q is not a number", v)
		}
	}
	lo, hi := def.Min, def.Max
	if (lo != nil && f < *lo) || (hi != nil && f > *hi) {
		switch {
		case lo != nil && hi != nil:
			return fmt.Sprintf("%s is out of range (%s to %s)", v, fmtNum(*lo), fmtNum(*hi))
		case lo != nil:
			return fmt.Sprintf("%s is out of range (at least %s)", v, fmtNum(*lo))
		default:
			return fmt.Sprintf("%s is out of range (at most %s)", v, fmtNum(*hi))
		}
	}
	return ""
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// crossChecks validate what one parameter's definition cannot say alone:
// values whose form depends on another parameter.
var crossChecks = map[string]func(p *params) []Problem{
	"dockerfile/instruction": func(p *params) []Problem {
		return checkCompareValue(p, false)
	},
	"metadata/attribute": func(p *params) []Problem {
		return checkCompareValue(p, true)
	},
	"files/attribute_match": func(p *params) []Problem {
		var probs []Problem
		if p.has("mode") {
			if _, err := parseMode(p.str("mode")); err != nil {
				probs = append(probs, Problem{Parameter: "mode", Message: fmt.Sprintf("%q is not an octal file mode (e.g. 0644)", p.str("mode"))})
			}
		}
		if p.has("checksum") && !isHex(p.str("checksum"), 64) {
			probs = append(probs, Problem{Parameter: "checksum", Message: fmt.Sprintf("%q is not a hex sha256 digest", p.str("checksum"))})
		}
		return probs
	},
}

// checkCompareValue checks the value parameter of the triggers that take
// check/value pairs (dockerfile/instruction, metadata/attribute).
func checkCompareValue(p *params, metadata bool) []Problem {
	check := p.str("check")
	if check == "" {
		return nil
	}
	if check == "exists" || check == "not_exists" {
		return nil
	}
	if !p.has("value") {
		return []Problem{{Parameter: "value", Message: fmt.Sprintf("is required by check %q", check)}}
	}
	v := p.str("value")
	if check == "like" || check == "not_like" {
		re, err := compileRegex(v)
		if err != nil {
			return []Problem{{Parameter: "value", Message: fmt.Sprintf("regular expression %q does not compile: %v", v, err)}}
		}
		p.res["value"] = re
		return nil
	}
	if !metadata {
		return nil
	}
	vals := []string{v}
	if check == "in" || check == "not_in" {
		vals = splitList(v)
	}
	switch p.str("attribute") {
	case "size":
		for _, s := range vals {
			if _, err := parseSize(s); err != nil {
				return []Problem{{Parameter: "value", Message: fmt.Sprintf("%q is not a size (e.g. 100MB, 1.5GB, 512MiB)", s)}}
			}
		}
	case "layer_count":
		for _, s := range vals {
			if _, err := strconv.ParseInt(s, 10, 64); err != nil {
				return []Problem{{Parameter: "value", Message: fmt.Sprintf("%q is not a whole number", s)}}
			}
		}
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
