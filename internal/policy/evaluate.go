package policy

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Input is what a bundle is evaluated against.
type Input struct {
	// Facts are the analysed image's facts. Whether a Dockerfile was
	// provided is Facts.Dockerfile != "".
	Facts buildgate.Facts
	// Tag is the full tag the image is evaluated for, used to choose a
	// mapping, e.g. "docker.io/library/nginx:latest". When empty, the
	// first of Facts.Tags is used.
	Tag string
	// DB describes the vulnerability data the matches were made with.
	DB buildgate.DBInfo
	// VEX, when set, decides which VEX statement applies to each
	// vulnerability finding.
	VEX VEX
}

// VEX finds the VEX statement that applies to a vulnerability of a
// package (p may be nil), nil when none does.
type VEX interface {
	Decide(m *buildgate.Match, p *buildgate.Package) *buildgate.VEXDecision
}

// Dockerfile modes, as reported in Evaluation.DockerfileMode.
const (
	DockerfileActual  = "actual"  // a Dockerfile was provided
	DockerfileGuessed = "guessed" // guessed from the image history
	DockerfileNone    = "none"    // neither: dockerfile triggers do not fire
)

// Evaluation is the outcome of evaluating a bundle against an image.
type Evaluation struct {
	FinalAction Action `json:"final_action"`
	Reason      Reason `json:"reason"`
	// PolicyFinalAction is the policies' verdict alone, before the
	// image allow and deny lists (Anchore's table final_action).
	PolicyFinalAction Action `json:"policy_final_action"`
	BundleID          string `json:"bundle_id"`
	BundleName        string `json:"bundle_name"`
	// MappingID is the id of the mapping that matched, "" when none did.
	// With no mapping no policy applies and the policies' verdict is GO,
	// as in Anchore.
	MappingID    string   `json:"mapping_id"`
	MappingName  string   `json:"mapping_name,omitempty"`
	PolicyIDs    []string `json:"policy_ids"`
	AllowlistIDs []string `json:"allowlist_ids"`
	// AllowlistedImage and DenylistedImage are the image-list entries the
	// image matched, if any.
	AllowlistedImage *ImageRef `json:"allowlisted_image,omitempty"`
	DenylistedImage  *ImageRef `json:"denylisted_image,omitempty"`
	Tag              string    `json:"tag"`
	ImageDigest      string    `json:"image_digest"`
	DockerfileMode   string    `json:"dockerfile_mode"`
	EvaluatedAt      time.Time `json:"evaluated_at"`
	Findings         []Finding `json:"findings"`
	// Baseline is the image the findings were compared with
	// (CompareBaseline), nil when they were not.
	Baseline *Baseline `json:"baseline,omitempty"`

	validUntil time.Time
}

// Finding is one firing of a rule's trigger.
type Finding struct {
	// TriggerID identifies the finding for allowlist items:
	// <vulnerability>+<package> for vulnerability triggers, else the hex
	// MD5 of gate, trigger and message, as Anchore makes them.
	TriggerID string `json:"trigger_id"`
	Gate      string `json:"gate"`
	Trigger   string `json:"trigger"`
	// Action is the rule's action. An allowlisted finding does not count
	// towards the final action.
	Action   Action `json:"action"`
	Message  string `json:"message"`
	PolicyID string `json:"policy_id"`
	RuleID   string `json:"rule_id"`
	// Allowlisted is the allowlist item that waives the finding.
	Allowlisted *AllowlistMatch `json:"allowlisted,omitempty"`
	// Expired is an item that would have waived the finding but expired.
	Expired *AllowlistMatch `json:"expired,omitempty"`
	// VEX is the VEX statement that applies to the finding, whatever its
	// status; a not_affected or fixed one also sets Allowlisted.
	VEX           *buildgate.VEXDecision `json:"vex,omitempty"`
	Vulnerability *buildgate.Match       `json:"vulnerability,omitempty"`
	Package       *buildgate.Package     `json:"package,omitempty"`
	// Inherited says the evaluation's Baseline has the finding too: the
	// change did not bring it.
	Inherited bool `json:"inherited,omitempty"`
}

// Effective returns the action the finding contributes: GO when
// allowlisted, else the rule's action.
func (f Finding) Effective() Action {
	if f.Allowlisted != nil {
		return ActionGo
	}
	return f.Action
}

// AllowlistMatch names the allowlist item that matched a finding.
type AllowlistMatch struct {
	AllowlistID   string     `json:"allowlist"`
	AllowlistName string     `json:"allowlist_name"`
	ItemID        string     `json:"item"`
	Reason        string     `json:"reason,omitempty"`
	ExpiresOn     *time.Time `json:"expires_on,omitempty"`
	// VEX is true when a VEX statement waives the finding: the
	// "allowlist" is its document and Reason the statement.
	VEX bool `json:"vex,omitempty"`
}

// Counts are an evaluation's findings by action; allowlisted findings are
// counted apart.
type Counts struct {
	Stop        int `json:"stop"`
	Warn        int `json:"warn"`
	Go          int `json:"go"`
	Allowlisted int `json:"allowlisted"`
}

// Counts counts the findings by action.
func (e *Evaluation) Counts() Counts {
	var c Counts
	for _, f := range e.Findings {
		switch {
		case f.Allowlisted != nil:
			c.Allowlisted++
		case f.Action == ActionStop:
			c.Stop++
		case f.Action == ActionWarn:
			c.Warn++
		default:
			c.Go++
		}
	}
	return c
}

// Passed reports whether the image passes: its final action is GO or WARN.
func (e *Evaluation) Passed() bool { return e.FinalAction != ActionStop }

// Status returns "pass" or "fail", as Anchore's /check reports.
func (e *Evaluation) Status() string {
	if e.Passed() {
		return "pass"
	}
	return "fail"
}

// Evaluate evaluates the bundle against the image at time now. It is
// pure. It returns a *ValidationError (wrapped) if the bundle is invalid.
//
// The first mapping matching the tag chooses the policies and allowlists;
// findings no unexpired allowlist item covers set each policy's action
// (the minimum of their rules' actions, GO if none), and the minimum over
// the policies is the policies' verdict. A denylisted image is then STOP,
// else an allowlisted image GO, else the verdict stands. Findings are
// computed in every case.
func Evaluate(b *Bundle, in Input, now time.Time) (*Evaluation, error) {
	c, probs := compile(b)
	if len(probs) > 0 {
		return nil, fmt.Errorf("evaluating policy bundle: %w", &ValidationError{Problems: probs})
	}
	tag := strings.TrimSpace(in.Tag)
	if tag == "" && len(in.Facts.Tags) > 0 {
		tag = in.Facts.Tags[0]
	}
	x := newEvalContext(&in, now)
	ev := &Evaluation{
		BundleID:          b.ID,
		BundleName:        b.Name,
		PolicyIDs:         []string{},
		AllowlistIDs:      []string{},
		Tag:               tag,
		ImageDigest:       in.Facts.Digest,
		DockerfileMode:    x.dockerfile().mode,
		EvaluatedAt:       now,
		Findings:          make([]Finding, 0, 64),
		PolicyFinalAction: ActionGo,
	}
	if tag != "" {
		ev.Tag = FullTag(tag)
	}
	target := newTarget(tag, in.Facts.Digest)

	if sel := firstMatch(c.mappings, target); sel != nil {
		m := sel.mapping
		ev.MappingID, ev.MappingName = m.ID, m.Name
		ev.PolicyIDs = append(ev.PolicyIDs, m.Policies()...)
		ev.AllowlistIDs = append(ev.AllowlistIDs, m.AllowlistIDs...)
		var lists []*compiledAllowlist
		for _, id := range m.AllowlistIDs {
			lists = append(lists, c.allowlists[id])
		}
		for _, pid := range m.Policies() {
			cp := c.policies[pid]
			for _, r := range cp.rules {
				for _, fd := range r.eval(r, x) {
					f := x.finding(r, fd)
					f.Allowlisted, f.Expired = applyAllowlists(lists, &f, fd, x)
					if in.VEX != nil && f.Vulnerability != nil {
						applyVEX(in.VEX, &f)
					}
					if f.Allowlisted == nil && f.Action < ev.PolicyFinalAction {
						ev.PolicyFinalAction = f.Action
					}
					ev.Findings = append(ev.Findings, f)
				}
			}
		}
	}

	ev.FinalAction, ev.Reason = ev.PolicyFinalAction, ReasonPolicyEvaluation
	if sel := firstMatch(c.denyImgs, target); sel != nil {
		ev.FinalAction, ev.Reason = ActionStop, ReasonDenylistedImage
		ref := *sel.ref
		ev.DenylistedImage = &ref
	} else if sel := firstMatch(c.allowImgs, target); sel != nil {
		ev.FinalAction, ev.Reason = ActionGo, ReasonAllowlistedImage
		ref := *sel.ref
		ev.AllowlistedImage = &ref
	}
	ev.validUntil = x.next
	return ev, nil
}

// ValidUntil returns the first instant after the evaluation at which
// evaluating the same input again may give another result (an allowlist
// item expires, a vulnerability or its fix becomes old enough, the DB
// becomes stale), or the zero time if time alone never changes it. It is
// zero on an evaluation decoded from JSON.
func (e *Evaluation) ValidUntil() time.Time { return e.validUntil }

// target is what mappings and image lists are matched against.
type target struct {
	registry, repo, tag string
	hasTag              bool
	digest              string
}

func newTarget(tag, digest string) target {
	t := target{digest: digest}
	if tag != "" {
		t.registry, t.repo, t.tag = ParseTag(tag)
		t.hasTag = true
	}
	return t
}

func firstMatch(sels []compiledSelector, t target) *compiledSelector {
	for i := range sels {
		if sels[i].matches(t) {
			return &sels[i]
		}
	}
	return nil
}

// matches reports whether an image selector matches the target. Registry
// and repository must match first. Then a tag selector matches the tag
// glob, or an exact digest; digest and id selectors match the image
// digest, with or without its "sha256:". An image evaluated without any
// tag has empty registry, repository and tag, and one referenced by
// digest alone an empty tag: only "*" globs match those.
func (s *compiledSelector) matches(t target) bool {
	if t.hasTag {
		if !s.registry.match(t.registry) || !s.repository.match(t.repo) {
			return false
		}
	} else if !s.registry.match("") || !s.repository.match("") {
		return false
	}
	digestMatch := func() bool {
		v := strings.TrimSpace(s.raw)
		if t.digest == "" || v == "" {
			return false
		}
		return v == t.digest || "sha256:"+v == t.digest
	}
	switch s.typ {
	case ImageTypeTag:
		return s.value.match(t.tag) || digestMatch()
	case ImageTypeDigest, ImageTypeID:
		return digestMatch()
	}
	return false
}

// applyAllowlists finds the first unexpired item of the lists (in order)
// that covers the finding, and otherwise the first expired one.
func applyAllowlists(lists []*compiledAllowlist, f *Finding, fd fired, x *evalContext) (active, expired *AllowlistMatch) {
	gate := f.Gate
	for _, l := range lists {
		for _, i := range l.candidates(f.TriggerID, fd.match) {
			it := &l.items[i]
			if it.gate != gate || !it.covers(f.TriggerID, fd.match) {
				continue
			}
			am := &AllowlistMatch{
				AllowlistID:   l.list.ID,
				AllowlistName: l.list.Name,
				ItemID:        it.item.ID,
				Reason:        it.item.Reason,
			}
			if it.expires != nil {
				t := *it.expires
				am.ExpiresOn = &t
				if !x.now.Before(t) {
					if expired == nil {
						expired = am
					}
					continue
				}
				x.changesAt(t)
			}
			return am, nil
		}
	}
	return nil, expired
}

// applyVEX records the VEX statement that applies to a vulnerability
// finding; a not_affected or fixed one waives it unless an allowlist item
// already does.
func applyVEX(v VEX, f *Finding) {
	d := v.Decide(f.Vulnerability, f.Package)
	if d == nil {
		return
	}
	f.VEX = d
	if d.Suppresses() && f.Allowlisted == nil {
		f.Allowlisted = &AllowlistMatch{
			AllowlistID: d.Source, AllowlistName: d.Source, ItemID: d.Vulnerability,
			Reason: d.Text(), VEX: true,
		}
	}
}

// candidates returns, in item order, the items that may cover a finding.
func (l *compiledAllowlist) candidates(triggerID string, m *buildgate.Match) []int {
	if len(l.items) == 0 {
		return nil
	}
	if len(l.keyed) == 0 {
		return l.wild
	}
	out := append(l.buf[:0], l.keyed[triggerID]...)
	if m != nil {
		out = append(out, l.keyed[m.VulnerabilityID]...)
		for _, r := range m.RelatedIDs {
			out = append(out, l.keyed[r]...)
		}
	}
	out = append(out, l.wild...)
	if len(out) > 1 {
		sort.Ints(out)
		j := 1
		for i := 1; i < len(out); i++ {
			if out[i] != out[j-1] {
				out[j] = out[i]
				j++
			}
		}
		out = out[:j]
	}
	l.buf = out
	return out
}

// covers reports whether the item's trigger id matches the finding's. For
// vulnerability findings an item written <vulnerability>+<package> also
// matches through the vulnerability's aliases and the package's other
// names (name, path, name-version, file name), so items written for
// Anchore's OS (CVE+name) and non-OS (CVE+file name) forms keep working.
func (it *compiledItem) covers(triggerID string, m *buildgate.Match) bool {
	if it.pat.match(triggerID) {
		return true
	}
	if m == nil || !it.split {
		return false
	}
	vulnOK := it.vulnPat.match(m.VulnerabilityID)
	for _, r := range m.RelatedIDs {
		vulnOK = vulnOK || it.vulnPat.match(r)
	}
	if !vulnOK {
		return false
	}
	for _, k := range packageKeys(m) {
		if it.pkgPat.match(k) {
			return true
		}
	}
	return false
}

// packageKeys are the names a match's package answers to in allowlists.
func packageKeys(m *buildgate.Match) []string {
	keys := []string{m.PackageName}
	if m.PackageVersion != "" {
		keys = append(keys, m.PackageName+"-"+m.PackageVersion)
	}
	if m.PackagePath != "" {
		keys = append(keys, m.PackagePath, path.Base(m.PackagePath))
		if d := path.Base(path.Dir(m.PackagePath)); d != "." && d != "/" {
			keys = append(keys, d) // npm: .../node_modules/<name>/package.json
		}
	}
	return keys
}

// vulnTriggerID is a vulnerability finding's trigger id, as Anchore makes
// it: <id>+<package name> for OS packages and, for non-OS packages,
// <id>+<package path> (the name when the path is unknown).
func vulnTriggerID(m *buildgate.Match) string {
	if !m.IsOS() && m.PackagePath != "" {
		return m.VulnerabilityID + "+" + m.PackagePath
	}
	return m.VulnerabilityID + "+" + m.PackageName
}

// hashTriggerID is Anchore's trigger id for triggers without their own:
// the hex MD5 of gate, trigger and message concatenated.
func hashTriggerID(gate, trigger, msg string) string {
	sum := md5.Sum([]byte(gate + trigger + msg))
	return hex.EncodeToString(sum[:])
}

// fired is one firing of a trigger, before it becomes a Finding.
type fired struct {
	id    string // "" for the hash id
	msg   string
	match *buildgate.Match
	pkg   *buildgate.Package
}

// evalFunc evaluates one rule.
type evalFunc func(r *compiledRule, x *evalContext) []fired

// evaluators implement each trigger, by "gate/trigger".
var evaluators = map[string]evalFunc{
	"vulnerabilities/package":                        evalVulnPackage,
	"vulnerabilities/stale_feed_data":                evalStaleFeed,
	"vulnerabilities/vulnerability_data_unavailable": evalDataUnavailable,
	"vulnerabilities/blacklist":                      evalVulnBlacklist,
	"vulnerabilities/known_exploited":                evalKnownExploited,
	"vulnerabilities/epss":                           evalEPSS,
	"dockerfile/instruction":                         evalInstruction,
	"dockerfile/effective_user":                      evalEffectiveUser,
	"dockerfile/exposed_ports":                       evalExposedPorts,
	"dockerfile/no_dockerfile_provided":              evalNoDockerfile,
	"packages/required_package":                      evalRequiredPackage,
	"packages/blacklist":                             evalPackageBlacklist,
	"packages/verify":                                evalVerify,
	"licenses/blacklist_exact_match":                 evalLicenseExact,
	"licenses/blacklist_partial_match":               evalLicensePartial,
	"secret_scans/content_regex_checks":              evalSecrets,
	"files/content_regex_match":                      evalContentMatch,
	"files/name_match":                               evalNameMatch,
	"files/attribute_match":                          evalAttributeMatch,
	"files/suid_or_guid_set":                         evalSUID,
	"metadata/attribute":                             evalMetadata,
	"always/always":                                  evalAlways,
}

// evalContext holds the input and what is derived from it once per
// evaluation.
type evalContext struct {
	in  *Input
	now time.Time
	// next is the first instant after now at which a rule's comparison
	// with now changes (zero: none); see Evaluation.ValidUntil.
	next    time.Time
	df      *dockerfileInfo
	pkgByID map[string]*buildgate.Package
	files   map[string]*buildgate.File // by path; see fileIndex
}

func newEvalContext(in *Input, now time.Time) *evalContext {
	return &evalContext{in: in, now: now}
}

// changesAt records that a comparison with now gives another result from
// t on.
func (x *evalContext) changesAt(t time.Time) {
	if t.After(x.now) && (x.next.IsZero() || t.Before(x.next)) {
		x.next = t
	}
}

func (x *evalContext) packageOf(m *buildgate.Match) *buildgate.Package {
	if m.PackageID == "" {
		return nil
	}
	if x.pkgByID == nil {
		x.pkgByID = make(map[string]*buildgate.Package, len(x.in.Facts.Packages))
		for i := range x.in.Facts.Packages {
			p := &x.in.Facts.Packages[i]
			if p.ID != "" {
				x.pkgByID[p.ID] = p
			}
		}
	}
	return x.pkgByID[m.PackageID]
}

// fileIndex returns the image's files by path, made once per evaluation.
func (x *evalContext) fileIndex() map[string]*buildgate.File {
	if x.files == nil {
		x.files = make(map[string]*buildgate.File, len(x.in.Facts.Files))
		for i := range x.in.Facts.Files {
			f := &x.in.Facts.Files[i]
			x.files[f.Path] = f
		}
	}
	return x.files
}

func (x *evalContext) finding(r *compiledRule, fd fired) Finding {
	f := Finding{
		TriggerID: fd.id,
		Gate:      r.gate.Name,
		Trigger:   r.triggerName,
		Action:    r.action,
		Message:   fd.msg,
		PolicyID:  r.policyID,
		RuleID:    r.rule.ID,
	}
	if f.TriggerID == "" {
		f.TriggerID = hashTriggerID(r.gate.Name, r.trig.Name, fd.msg)
	}
	if fd.match != nil {
		m := *fd.match
		f.Vulnerability = &m
		if fd.pkg == nil {
			fd.pkg = x.packageOf(fd.match)
		}
	}
	if fd.pkg != nil {
		p := *fd.pkg
		p.Files = nil // thousands of entries: the package is named, not described
		f.Package = &p
	}
	return f
}
