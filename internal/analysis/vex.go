package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// VEXStore keeps the VEX documents admins store.
type VEXStore interface {
	SaveVEXDocument(ctx context.Context, d buildgate.VEXDocument) error
	// VEXDocuments returns every document, newest first.
	VEXDocuments(ctx context.Context) ([]buildgate.VEXDocument, error)
	// VEXDocumentIDs returns every document's ID, sorted.
	VEXDocumentIDs(ctx context.Context) ([]string, error)
	DeleteVEXDocument(ctx context.Context, id string) error
}

// VEXEngine reads VEX documents and applies them (internal/vex).
type VEXEngine interface {
	// Parse checks a document and returns its format and statements, or
	// an EINVALID error saying what is wrong with it.
	Parse(data []byte) (format string, statements int, err error)
	// Judge returns what decides the image's findings from the
	// documents, the first with a statement for a finding winning.
	Judge(t buildgate.VEXTarget, docs []NamedVEX) (policy.VEX, error)
	// Export writes the evaluation's allowlisted findings and VEX
	// decisions as an OpenVEX document.
	Export(t buildgate.VEXTarget, ev *policy.Evaluation, now time.Time) ([]byte, error)
}

// NamedVEX is a VEX document and the name its decisions give it.
type NamedVEX struct {
	Name string
	Data []byte
}

// RunVEXName names a document sent with one check (--vex).
const RunVEXName = "this run's VEX document"

// SetVEX makes evaluations apply the stored VEX documents whose scope
// matches the image, and enables the VEX methods.
func (v *Verdicts) SetVEX(store VEXStore, engine VEXEngine) {
	v.vexStore, v.vexEngine = store, engine
}

func (v *Verdicts) vexEnabled() error {
	if v.vexEngine == nil {
		return buildgate.Errorf(buildgate.EUNAVAILABLE, "this gate does not apply VEX documents")
	}
	return nil
}

// AddVEX checks and stores a VEX document for the images of the
// repositories scope matches ("" or "*": all images), and re-evaluates the
// stored verdicts.
func (v *Verdicts) AddVEX(ctx context.Context, name, scope string, data []byte) (*buildgate.VEXDocument, error) {
	if err := v.vexEnabled(); err != nil {
		return nil, err
	}
	scope = strings.TrimSpace(scope)
	if scope == "" {
		scope = "*"
	}
	if last := scope[strings.LastIndex(scope, "/")+1:]; strings.Contains(scope, "@") || (strings.Contains(scope, "/") && strings.Contains(last, ":")) {
		return nil, buildgate.Errorf(buildgate.EINVALID, "the VEX scope %q is a glob over registry/repository, without tag or digest", scope)
	}
	format, n, err := v.vexEngine.Parse(data)
	if err != nil {
		return nil, err
	}
	d := buildgate.VEXDocument{
		ID: buildgate.NewID(), Name: strings.TrimSpace(name), Scope: scope, Format: format, Statements: n,
		Document: data, CreatedAt: v.Now(),
	}
	if d.Name == "" {
		d.Name = d.ID
	}
	if err := v.vexStore.SaveVEXDocument(ctx, d); err != nil {
		return nil, err
	}
	v.reeval.Request()
	return &d, nil
}

// VEXDocuments lists the stored VEX documents, newest first.
func (v *Verdicts) VEXDocuments(ctx context.Context) ([]buildgate.VEXDocument, error) {
	if err := v.vexEnabled(); err != nil {
		return nil, err
	}
	return v.vexStore.VEXDocuments(ctx)
}

// DeleteVEX deletes a stored VEX document and re-evaluates the stored
// verdicts.
func (v *Verdicts) DeleteVEX(ctx context.Context, id string) error {
	if err := v.vexEnabled(); err != nil {
		return err
	}
	if err := v.vexStore.DeleteVEXDocument(ctx, id); err != nil {
		return err
	}
	v.reeval.Request()
	return nil
}

// VEXVersion identifies the set of stored VEX documents: it changes
// whenever one is added or deleted, so a cache of evaluations can key on
// it. It is "" when no document is stored.
func (v *Verdicts) VEXVersion(ctx context.Context) (string, error) {
	if v.vexEngine == nil {
		return "", nil
	}
	// Documents are never changed, only added and deleted: their IDs
	// name the set.
	ids, err := v.vexStore.VEXDocumentIDs(ctx)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:8]), nil
}

// vexTarget is what VEX products may name of an image: its digest and
// the repositories of its tags.
func vexTarget(img *buildgate.Image) buildgate.VEXTarget {
	t := buildgate.VEXTarget{Digest: img.Digest}
	for _, tag := range img.Tags {
		reg, repo, _ := policy.ParseTag(tag)
		if r := reg + "/" + repo; !slices.Contains(t.Repositories, r) {
			t.Repositories = append(t.Repositories, r)
		}
	}
	return t
}

// vexJudge returns what applies the run's document (first, when not nil)
// and the stored documents whose scope matches one of the image's
// repositories; nil when there are none.
func (v *Verdicts) vexJudge(ctx context.Context, img *buildgate.Image, run []byte) (policy.VEX, error) {
	if v.vexEngine == nil {
		if run != nil {
			return nil, v.vexEnabled()
		}
		return nil, nil
	}
	t := vexTarget(img)
	var docs []NamedVEX
	if run != nil {
		docs = append(docs, NamedVEX{Name: RunVEXName, Data: run})
	}
	stored, err := v.vexStore.VEXDocuments(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range stored {
		if scopeMatches(d.Scope, t.Repositories) {
			docs = append(docs, NamedVEX{Name: "VEX document " + d.Name, Data: d.Document})
		}
	}
	if len(docs) == 0 {
		return nil, nil
	}
	return v.vexEngine.Judge(t, docs)
}

// scopeMatches reports whether a document's scope covers an image in the
// repositories; "*" covers every image, tagged or not.
func scopeMatches(scope string, repos []string) bool {
	if scope == "*" {
		return true
	}
	for _, r := range repos {
		if policy.MatchGlob(scope, r) {
			return true
		}
	}
	return false
}
