package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// PolicyStore is what Verdicts needs from the database.
type PolicyStore interface {
	SavePolicy(ctx context.Context, id, name string, bundle []byte, activate bool) (*buildgate.PolicyRecord, error)
	ActivatePolicy(ctx context.Context, id string) error
	Policy(ctx context.Context, id string) (*buildgate.PolicyRecord, error)
	ActivePolicy(ctx context.Context) (*buildgate.PolicyRecord, error)
	DeletePolicy(ctx context.Context, id string) error
	CountPolicies(ctx context.Context) (int, error)
	SaveEvaluation(ctx context.Context, e buildgate.StoredEvaluation) error
	Evaluation(ctx context.Context, digest, tag, policyID string) (*buildgate.StoredEvaluation, error)
	Image(ctx context.Context, digest string) (*buildgate.Image, error)
	Analysis(ctx context.Context, digest string) (*buildgate.Analysis, error)
	MatchStamp(ctx context.Context, digest string) (buildgate.MatchStamp, error)
	AnalyzedDigests(ctx context.Context) ([]string, error)
}

// DBInfo reports the vulnerability DB that evaluations use.
type DBInfo interface {
	Info() buildgate.DBInfo
}

// Verdicts manages policy bundles and evaluates images against them,
// storing each verdict with the bundle version and DB it used.
type Verdicts struct {
	store PolicyStore
	db    DBInfo
	log   *slog.Logger
	// Now is the clock evaluations use.
	Now func() time.Time
	// OnChange, when set, is called after a verdict is stored whose final
	// action differs from the one stored before for the same image, tag
	// and policy; previous is "" for the first.
	OnChange func(ctx context.Context, e buildgate.StoredEvaluation, previous string)

	mu     sync.Mutex // serialises re-evaluations
	saveMu sync.Mutex // makes reading the previous verdict and saving one atomic
	reeval *Trigger   // re-evaluations of every verdict, run by Run
	cache  *verdictCache

	vexStore  VEXStore // set by SetVEX
	vexEngine VEXEngine
}

// DefaultVerdictCacheBytes bounds the verdicts kept decoded in memory.
const DefaultVerdictCacheBytes = 64 << 20

// NewVerdicts returns the policy service.
func NewVerdicts(store PolicyStore, db DBInfo, log *slog.Logger) *Verdicts {
	return &Verdicts{
		store: store, db: db, log: log, Now: func() time.Time { return time.Now().UTC() }, reeval: NewTrigger(),
		cache: newVerdictCache(DefaultVerdictCacheBytes),
	}
}

// SetCacheBytes bounds the verdicts kept decoded in memory (by the size
// of their JSON); call it before the first check.
func (v *Verdicts) SetCacheBytes(n int64) { v.cache = newVerdictCache(n) }

// Run re-evaluates every stored verdict each time the active bundle
// changes, until ctx ends; changes made during a re-evaluation make one
// more after it.
func (v *Verdicts) Run(ctx context.Context) {
	v.reeval.Run(ctx, v.ReevaluateAll)
}

// InstallDefault installs and activates Anchore's default bundle when no
// policy is stored yet.
func (v *Verdicts) InstallDefault(ctx context.Context) error {
	n, err := v.store.CountPolicies(ctx)
	if err != nil || n > 0 {
		return err
	}
	b := policy.DefaultBundle()
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := v.store.SavePolicy(ctx, b.ID, b.Name, data, true); err != nil {
		return err
	}
	v.log.Info("installed and activated Anchore's default policy bundle", "id", b.ID)
	return nil
}

// Save validates a bundle (JSON) and stores it as a new version. When id
// is not empty it must equal the bundle's id (an update of that policy).
// Saving the active bundle re-evaluates stored verdicts (through Run).
func (v *Verdicts) Save(ctx context.Context, id string, data []byte, activate bool) (*buildgate.PolicyRecord, error) {
	b, err := policy.ParseBundle(data)
	if err != nil {
		return nil, err
	}
	if id != "" && b.ID != id {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the bundle's id %q does not match the policy %q in the path", b.ID, id)
	}
	canonical, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	rec, err := v.store.SavePolicy(ctx, b.ID, b.Name, canonical, activate)
	if err != nil {
		return nil, err
	}
	if rec.Active {
		v.reeval.Request()
	}
	return rec, nil
}

// Activate makes a policy the active bundle and re-evaluates stored
// verdicts (through Run).
func (v *Verdicts) Activate(ctx context.Context, id string) error {
	if err := v.store.ActivatePolicy(ctx, id); err != nil {
		return err
	}
	v.reeval.Request()
	return nil
}

// Check returns the verdict of an analysed image for a tag under a policy
// (the active one when policyID is empty). An empty tag means the image's
// first tag. It answers from the stored verdict when that was evaluated
// from the same inputs (see inputs) and time alone has not changed it
// since; otherwise it evaluates the image and stores the verdict. The
// verdict returned is shared: callers must not modify it.
func (v *Verdicts) Check(ctx context.Context, digest, tag, policyID string) (*policy.Verdict, error) {
	img, rec, err := v.checkTarget(ctx, digest, policyID)
	if err != nil {
		return nil, err
	}
	if tag == "" && len(img.Tags) > 0 {
		tag = img.Tags[0]
	}
	stamp, err := v.store.MatchStamp(ctx, digest)
	if err != nil {
		return nil, err
	}
	inputs, err := v.inputs(ctx, img, rec, stamp, tag)
	if err != nil {
		return nil, err
	}
	if vd, err := v.stored(ctx, img.Digest, tag, rec.ID, inputs); vd != nil || err != nil {
		return vd, err
	}
	a, err := v.store.Analysis(ctx, digest)
	if err != nil {
		return nil, err
	}
	return v.evaluate(ctx, img, a, rec, tag)
}

// CheckVEX is Check applying a VEX document of this check only (before
// the stored ones): the verdict is returned, not stored, as it holds for
// this one check; with a baseline, compared with it as CheckBaseline.
func (v *Verdicts) CheckVEX(ctx context.Context, digest, tag, policyID, baseline string, doc []byte) (*policy.Verdict, error) {
	if err := v.vexEnabled(); err != nil {
		return nil, err
	}
	if _, _, err := v.vexEngine.Parse(doc); err != nil {
		return nil, err
	}
	img, rec, err := v.checkTarget(ctx, digest, policyID)
	if err != nil {
		return nil, err
	}
	a, err := v.store.Analysis(ctx, digest)
	if err != nil {
		return nil, err
	}
	verdict, _, err := v.compute(ctx, img, a, rec, tag, doc)
	if err != nil || baseline == "" {
		return verdict, err
	}
	return v.compareBaseline(ctx, verdict, baseline)
}

// ExportVEX checks an image (as Check) and returns the verdict's
// allowlisted findings and VEX decisions as an OpenVEX document.
func (v *Verdicts) ExportVEX(ctx context.Context, digest, tag, policyID string) ([]byte, error) {
	if err := v.vexEnabled(); err != nil {
		return nil, err
	}
	verdict, err := v.Check(ctx, digest, tag, policyID)
	if err != nil {
		return nil, err
	}
	img, err := v.store.Image(ctx, digest)
	if err != nil {
		return nil, err
	}
	return v.vexEngine.Export(vexTarget(img), &verdict.Evaluation, v.Now())
}

// checkTarget reads the analysed image and the policy (the active one
// when policyID is empty) a check evaluates.
func (v *Verdicts) checkTarget(ctx context.Context, digest, policyID string) (*buildgate.Image, *buildgate.PolicyRecord, error) {
	img, err := v.store.Image(ctx, digest)
	if err != nil {
		return nil, nil, err
	}
	if img.Status != buildgate.StatusAnalyzed {
		msg := fmt.Sprintf("image %s is not analyzed (status: %s)", digest, img.Status)
		if img.Error != "" {
			msg += ": " + img.Error
		}
		return nil, nil, buildgate.Errorf(buildgate.ECONFLICT, "%s", msg)
	}
	var rec *buildgate.PolicyRecord
	if policyID == "" {
		rec, err = v.store.ActivePolicy(ctx)
	} else {
		rec, err = v.store.Policy(ctx, policyID)
	}
	if err != nil {
		return nil, nil, err
	}
	return img, rec, nil
}

// CheckBaseline is Check with the findings compared with the analysed
// image baseline (a digest): those it has too are inherited
// (policy.Evaluation.CompareBaseline). The baseline is evaluated under
// the same bundle and tag, so that its findings other than
// vulnerabilities compare; that evaluation is not stored. The stored
// verdict is Check's, without the comparison.
func (v *Verdicts) CheckBaseline(ctx context.Context, digest, tag, policyID, baseline string) (*policy.Verdict, error) {
	verdict, err := v.Check(ctx, digest, tag, policyID)
	if err != nil {
		return nil, err
	}
	c := *verdict // Check's verdict is shared: compare a copy of its findings
	c.Findings = slices.Clone(verdict.Findings)
	return v.compareBaseline(ctx, &c, baseline)
}

// compareBaseline marks the verdict's findings the analysed image
// baseline has too as inherited.
func (v *Verdicts) compareBaseline(ctx context.Context, verdict *policy.Verdict, baseline string) (*policy.Verdict, error) {
	img, err := v.store.Image(ctx, baseline)
	switch {
	case buildgate.ErrorCode(err) == buildgate.ENOTFOUND:
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "the baseline %s is not known to the gate: submit it first", baseline)
	case err != nil:
		return nil, err
	case img.Status != buildgate.StatusAnalyzed:
		return nil, buildgate.Errorf(buildgate.ECONFLICT, "the baseline %s is not analyzed (status: %s)", baseline, img.Status)
	}
	a, err := v.store.Analysis(ctx, baseline)
	if err != nil {
		return nil, err
	}
	rec, err := v.store.Policy(ctx, verdict.BundleID)
	if err != nil {
		return nil, err
	}
	var b policy.Bundle
	if err := json.Unmarshal(rec.Bundle, &b); err != nil {
		return nil, fmt.Errorf("reading stored bundle %q: %w", rec.ID, err)
	}
	facts := a.Facts
	facts.Tags = img.Tags
	facts.Dockerfile = img.Dockerfile
	db := v.db.Info()
	if !a.DBBuilt.IsZero() {
		db.Built = a.DBBuilt
	}
	base, err := policy.Evaluate(&b, policy.Input{Facts: facts, Tag: verdict.Tag, DB: db}, verdict.EvaluatedAt)
	if err != nil {
		return nil, err
	}
	ref := ""
	if len(img.Tags) > 0 {
		ref = img.Tags[0]
	}
	verdict.CompareBaseline(policy.Baseline{Digest: baseline, Ref: ref}, a.Matches, base)
	return verdict, nil
}

// stored returns the verdict kept in memory or in the store for an image,
// tag and policy if it was evaluated from inputs and is still fresh, and
// nil otherwise.
func (v *Verdicts) stored(ctx context.Context, digest, tag, policyID, inputs string) (*policy.Verdict, error) {
	now := v.Now()
	key := verdictKey(digest, tag, policyID)
	if vd := v.cache.get(key, inputs, now); vd != nil {
		return vd, nil
	}
	e, err := v.store.Evaluation(ctx, digest, tag, policyID)
	switch {
	case buildgate.ErrorCode(err) == buildgate.ENOTFOUND:
		return nil, nil
	case err != nil:
		return nil, err
	case e.Inputs != inputs || !fresh(e.EvaluatedAt, e.ValidUntil, now):
		return nil, nil
	}
	var vd policy.Verdict
	if err := json.Unmarshal(e.Result, &vd); err != nil {
		return nil, fmt.Errorf("reading the stored verdict of %s: %w", digest, err)
	}
	v.cache.put(key, inputs, e.ValidUntil, &vd, int64(len(e.Result)))
	c := vd
	return &c, nil
}

// verdictKey is what a verdict is stored under.
func verdictKey(digest, tag, policyID string) string {
	return digest + "\x00" + tag + "\x00" + policyID
}

// inputs identifies everything but the clock that an evaluation of an
// image for a tag reads: the policy's version and bundle, the image's
// tags and Dockerfile, its matches (the DB they were made with and when
// they were stored), the DB's description and the stored VEX documents
// (VEXVersion). A verdict evaluated from the same inputs is the same
// until its ValidUntil.
func (v *Verdicts) inputs(ctx context.Context, img *buildgate.Image, rec *buildgate.PolicyRecord, st buildgate.MatchStamp, tag string) (string, error) {
	vex, err := v.VEXVersion(ctx)
	if err != nil {
		return "", err
	}
	db, err := json.Marshal(v.db.Info())
	if err != nil {
		panic(err) // a struct of strings and times always encodes
	}
	bundle := sha256.Sum256(rec.Bundle)
	h := sha256.New()
	for _, part := range append([]string{
		rec.ID, strconv.Itoa(rec.Version), string(bundle[:]),
		img.Digest, tag, img.Dockerfile,
		st.DBBuilt.UTC().Format(time.RFC3339Nano), st.MatchedAt.UTC().Format(time.RFC3339Nano), string(db), vex,
	}, img.Tags...) {
		// length-prefixed, so that no two lists of parts hash alike
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// evaluate computes and stores a verdict.
func (v *Verdicts) evaluate(ctx context.Context, img *buildgate.Image, a *buildgate.Analysis, rec *buildgate.PolicyRecord, tag string) (*policy.Verdict, error) {
	if tag == "" && len(img.Tags) > 0 {
		tag = img.Tags[0]
	}
	inputs, err := v.inputs(ctx, img, rec, buildgate.MatchStamp{DBBuilt: a.DBBuilt, MatchedAt: a.MatchedAt}, tag)
	if err != nil {
		return nil, err
	}
	verdict, stored, err := v.compute(ctx, img, a, rec, tag, nil)
	if err != nil {
		return nil, err
	}
	stored.Inputs = inputs
	v.saveMu.Lock()
	defer v.saveMu.Unlock()
	previous := ""
	if v.OnChange != nil {
		prev, err := v.store.Evaluation(ctx, img.Digest, tag, rec.ID)
		switch {
		case err == nil:
			previous = prev.FinalAction
		case buildgate.ErrorCode(err) != buildgate.ENOTFOUND:
			return nil, err
		}
	}
	if err := v.store.SaveEvaluation(ctx, stored); err != nil {
		return nil, err
	}
	v.cache.put(verdictKey(img.Digest, tag, rec.ID), inputs, stored.ValidUntil, verdict, int64(len(stored.Result)))
	if v.OnChange != nil && previous != stored.FinalAction {
		// The verdict is stored: its alerts follow, deadline or not.
		v.OnChange(context.WithoutCancel(ctx), stored, previous)
	}
	c := *verdict
	return &c, nil
}

// compute evaluates an image with the stored VEX documents and run's.
func (v *Verdicts) compute(ctx context.Context, img *buildgate.Image, a *buildgate.Analysis, rec *buildgate.PolicyRecord, tag string, run []byte) (*policy.Verdict, buildgate.StoredEvaluation, error) {
	var b policy.Bundle
	if err := json.Unmarshal(rec.Bundle, &b); err != nil {
		return nil, buildgate.StoredEvaluation{}, fmt.Errorf("reading stored bundle %q: %w", rec.ID, err)
	}
	if tag == "" && len(img.Tags) > 0 {
		tag = img.Tags[0]
	}
	judge, err := v.vexJudge(ctx, img, run)
	if err != nil {
		return nil, buildgate.StoredEvaluation{}, err
	}
	facts := a.Facts
	facts.Tags = img.Tags
	facts.Dockerfile = img.Dockerfile
	db := v.db.Info()
	// Evaluate with the DB the matches were made with.
	if !a.DBBuilt.IsZero() {
		db.Built = a.DBBuilt
	}
	e, err := policy.Evaluate(&b, policy.Input{Facts: facts, Tag: tag, DB: db, VEX: judge}, v.Now())
	if err != nil {
		return nil, buildgate.StoredEvaluation{}, err
	}
	verdict := &policy.Verdict{Evaluation: *e, BundleVersion: rec.Version}
	if !db.Built.IsZero() {
		built := db.Built
		verdict.DBBuilt = &built
	}
	result, err := json.Marshal(verdict)
	if err != nil {
		return nil, buildgate.StoredEvaluation{}, err
	}
	return verdict, buildgate.StoredEvaluation{
		Digest: img.Digest, Tag: tag, PolicyID: rec.ID, PolicyVersion: rec.Version,
		FinalAction: e.FinalAction.String(), DBBuilt: db.Built, EvaluatedAt: e.EvaluatedAt,
		ValidUntil: e.ValidUntil(), Result: result,
	}, nil
}

// Reevaluate evaluates an analysed image under the active bundle for each
// of its tags (or its digest alone when it has none), as after an analysis
// or a re-match.
func (v *Verdicts) Reevaluate(ctx context.Context, digest string) {
	v.reevaluate(ctx, digest, nil)
}

// EvaluateAnalysis is Reevaluate of an analysis just stored, a, read from
// memory rather than from the store (analysis.Observer.AnalyzedWith).
func (v *Verdicts) EvaluateAnalysis(ctx context.Context, a *buildgate.Analysis) {
	v.reevaluate(ctx, a.Digest, a)
}

// reevaluate is Reevaluate, with the stored analysis a when it is not nil.
func (v *Verdicts) reevaluate(ctx context.Context, digest string, a *buildgate.Analysis) {
	rec, err := v.store.ActivePolicy(ctx)
	if err != nil {
		return // no active bundle: nothing to evaluate
	}
	img, err := v.store.Image(ctx, digest)
	if err != nil || img.Status != buildgate.StatusAnalyzed {
		return
	}
	if a == nil {
		if a, err = v.store.Analysis(ctx, digest); err != nil {
			v.log.Error("reading analysis for evaluation", "digest", digest, "err", err)
			return
		}
	}
	tags := img.Tags
	if len(tags) == 0 {
		tags = []string{""}
	}
	for _, t := range tags {
		if ctx.Err() != nil {
			v.log.Warn("evaluation of an image's verdicts cut short", "digest", digest, "err", ctx.Err())
			return
		}
		if _, err := v.evaluate(ctx, img, a, rec, t); err != nil {
			v.log.Error("evaluating", "digest", digest, "tag", t, "err", err)
		}
	}
}

// ReevaluateAll recomputes the verdict of every analysed image under the
// active bundle from stored analysis data (no pull).
func (v *Verdicts) ReevaluateAll(ctx context.Context) {
	v.mu.Lock()
	defer v.mu.Unlock()
	digests, err := v.store.AnalyzedDigests(ctx)
	if err != nil {
		v.log.Error("listing images to re-evaluate", "err", err)
		return
	}
	for i, d := range digests {
		if ctx.Err() != nil {
			v.log.Info("re-evaluation of stored verdicts interrupted", "images", i, "of", len(digests))
			return
		}
		v.Reevaluate(ctx, d)
	}
	v.log.Info("re-evaluated stored verdicts", "images", len(digests))
}
