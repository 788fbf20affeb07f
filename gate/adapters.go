package main

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/catalog"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/registry"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/vulndb"
)

// registryAdapter serves analysis.Registry with go-containerregistry.
type registryAdapter struct{ client *registry.Client }

func (r registryAdapter) Resolve(ctx context.Context, s string) (analysis.Resolved, error) {
	return r.ResolveFor(ctx, s, "", nil)
}

// ResolveFor resolves for a platform, with the submission's own
// authorization when auth is not nil.
func (r registryAdapter) ResolveFor(ctx context.Context, s, platform string, auth *analysis.PullAuth) (analysis.Resolved, error) {
	ref, err := registry.ParseReference(s)
	if err != nil {
		return analysis.Resolved{}, err
	}
	var o registry.ResolveOptions
	if platform != "" {
		if o.Platform, err = registry.ParsePlatform(platform); err != nil {
			return analysis.Resolved{}, err
		}
	}
	if auth != nil {
		o.Auth = &registry.Authorization{Host: ref.Context().RegistryStr(), Header: auth.Authorization}
	}
	res, err := r.client.ResolveWith(ctx, ref, o)
	if err != nil {
		return analysis.Resolved{}, err
	}
	tag := registry.FullTag(s, ref)
	if base, _, ok := strings.Cut(s, "@"); ok && tag == "" {
		// "repo:tag@sha256:..." (as Kubernetes and tag polling give it):
		// the digest is analysed and the tag recorded.
		if t, err := registry.ParseReference(base); err == nil && strings.Contains(path.Base(base), ":") {
			tag = registry.FullTag(base, t)
		}
	}
	return analysis.Resolved{
		Digest: res.Digest, IndexDigest: res.IndexDigest, Tag: tag,
		PullRef: ref.Context().Digest(res.Digest).String(), Registry: ref.Context().RegistryStr(),
	}, nil
}

// open opens the image pullRef names where its registry serves it, with
// auth alone when it is not nil (over plain HTTP when its registry URL
// said so), else with the stored credentials.
func (r registryAdapter) open(ctx context.Context, pullRef string, auth *analysis.PullAuth) (v1.Image, error) {
	res, err := pullResolved(pullRef, auth)
	if err != nil {
		return nil, err
	}
	if auth == nil {
		return r.client.Open(ctx, res)
	}
	return r.client.OpenAuthorized(ctx, res, authorization(*auth))
}

// pullResolved reads a job's pull reference ("repo@sha256:..."), over
// plain HTTP when a submission's authorization said so.
func pullResolved(pullRef string, auth *analysis.PullAuth) (registry.Resolved, error) {
	if auth != nil {
		ref, err := registry.ParseDigestReference(pullRef, auth.PlainHTTP)
		if err != nil {
			return registry.Resolved{}, err
		}
		return registry.Resolved{Ref: ref, Digest: ref.DigestStr()}, nil
	}
	ref, err := name.NewDigest(pullRef)
	if err != nil {
		return registry.Resolved{}, buildgate.Errorf(buildgate.EINVALID, "invalid pull reference %q: %v", pullRef, err)
	}
	return registry.Resolved{Ref: ref, Digest: ref.DigestStr()}, nil
}

// authorization is a submission's authorization for its registry alone.
func authorization(auth analysis.PullAuth) registry.Authorization {
	return registry.Authorization{Host: auth.Host, Header: auth.Authorization}
}

func (r registryAdapter) ImportArchive(path, dir string) (string, error) {
	return r.client.ImportArchive(path, dir)
}

func (r registryAdapter) NormalizeTag(tag string) (string, error) {
	ref, err := registry.ParseReference(tag)
	if err != nil {
		return "", err
	}
	full := registry.FullTag(tag, ref)
	if full == "" {
		return "", buildgate.Errorf(buildgate.EINVALID, "tag %q names a digest; give repository:tag", tag)
	}
	return full, nil
}

// catalogAdapter serves analysis.Cataloger with syft.
type catalogAdapter struct {
	// limits bound what an image may unpack to.
	limits catalog.Limits
	// layers, when set, keeps each layer's files pass by diff ID.
	layers *catalog.LayerCache
	// registry opens the images CatalogRemote catalogs.
	registry registryAdapter
	// policies lists the stored bundles, whose content rules each
	// analysis searches file contents for.
	policies interface {
		ListPolicies(ctx context.Context) ([]buildgate.PolicyRecord, error)
	}
}

func (c catalogAdapter) Catalog(ctx context.Context, dir string) (*buildgate.Analysis, error) {
	cfg, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	r, err := catalog.Start(ctx, dir, cfg)
	if err != nil {
		return nil, err
	}
	return analysisOf(r), nil
}

// CatalogRemote catalogs the image where its registry serves it: each
// layer is unpacked as it downloads.
func (c catalogAdapter) CatalogRemote(ctx context.Context, pullRef string, auth *analysis.PullAuth, pulled func()) (*buildgate.Analysis, error) {
	img, err := c.registry.open(ctx, pullRef, auth)
	if err != nil {
		return nil, err
	}
	cfg, err := c.config(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Unpacked = pulled
	r, err := catalog.StartImage(ctx, img, cfg)
	if err != nil {
		return nil, err
	}
	return analysisOf(r), nil
}

func (c catalogAdapter) config(ctx context.Context) (catalog.Config, error) {
	cfg := catalog.DefaultConfig()
	cfg.Limits = c.limits
	cfg.LayerCache = c.layers
	var err error
	cfg.ContentRules, err = c.contentRules(ctx)
	return cfg, err
}

// analysisOf is the analysis of r, which the analysis matches (r.Syft)
// while the catalog encodes its document (r.Wait).
func analysisOf(r *catalog.Result) *buildgate.Analysis {
	a := &buildgate.Analysis{
		Facts: buildgate.Facts{
			Digest: r.Digest, Metadata: r.Metadata, Packages: r.Packages, Files: r.Files,
			Secrets: r.Secrets, ContentMatches: r.ContentMatches,
		},
		SBOM: r.SBOM,
	}
	a.Finish = func() error {
		if err := r.Wait(); err != nil {
			return err
		}
		a.SBOM = r.SBOM
		return nil
	}
	if r.Syft != nil { // nil when the SBOM came from the layer cache
		a.Decoded = r.Syft
	}
	return a
}

// contentRules returns a content rule for each regex that a
// files/content_regex_match rule of a stored bundle names, named after the
// regex itself (the regex_name the rule fires for).
func (c catalogAdapter) contentRules(ctx context.Context) ([]catalog.Rule, error) {
	recs, err := c.policies.ListPolicies(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the content rules of stored policies: %w", err)
	}
	var res []string
	for _, rec := range recs {
		b, err := policy.ParseBundle(rec.Bundle)
		if err != nil {
			return nil, fmt.Errorf("reading the content rules of policy %q: %w", rec.ID, err)
		}
		r, err := b.ContentRegexes()
		if err != nil {
			return nil, fmt.Errorf("reading the content rules of policy %q: %w", rec.ID, err)
		}
		res = append(res, r...)
	}
	slices.Sort(res)
	rules := make([]catalog.Rule, 0, len(res))
	for _, re := range slices.Compact(res) {
		rules = append(rules, catalog.Rule{Name: re, Regexp: re})
	}
	return rules, nil
}

// DecodeSBOM leaves the syft-json document to the analysis's Finish: the
// matcher reads the decoded SBOM, so the encoding runs beside it.
func (catalogAdapter) DecodeSBOM(r io.Reader) (*buildgate.Analysis, error) {
	d, err := catalog.DecodeSBOM(r)
	if err != nil {
		return nil, buildgate.Errorf(buildgate.EINVALID, "%v", err)
	}
	a := &buildgate.Analysis{Facts: buildgate.Facts{Metadata: d.Metadata, Packages: d.Packages}, Decoded: d.SBOM}
	a.Finish = func() (err error) {
		a.SBOM, err = d.SyftJSON()
		return err
	}
	return a, nil
}

// sbomAdapter serves server.SBOMs with syft's encoders.
type sbomAdapter struct{}

func (sbomAdapter) Convert(b []byte, format string) ([]byte, error) {
	return catalog.ConvertSBOM(b, format)
}

// dbAdapter serves server.VulnDB.
type dbAdapter struct {
	m         *vulndb.Manager
	updateURL string
}

func (d dbAdapter) Ready() bool { return d.m.Ready() }

// Import reports a refused archive as invalid input, naming the cause.
func (d dbAdapter) Import(ctx context.Context, r io.Reader) error {
	if _, err := d.m.Import(ctx, r); err != nil {
		if ctx.Err() != nil || buildgate.ErrorCode(err) != buildgate.EINTERNAL {
			return err
		}
		return buildgate.Errorf(buildgate.EINVALID, "the DB archive was refused and the current DB kept: %v", err)
	}
	return nil
}

func (d dbAdapter) Status() api.DBStatus { return dbStatus(d.m.Status(), d.updateURL) }

func dbStatus(s vulndb.Status, updateURL string) api.DBStatus {
	// The update URL may carry credentials (userinfo, a signed query):
	// answers show it, and the update error quoting it, redacted.
	out := api.DBStatus{
		Ready: s.Ready, SchemaVersion: s.SchemaVersion, LastUpdateAttempt: s.LastUpdateAttempt,
		LastUpdateError: secret.Redact(s.LastUpdateError, secret.URLSecrets(updateURL)...),
		UpdateURL:       secret.RedactURL(updateURL), Providers: []api.DBProvider{},
	}
	if !s.Built.IsZero() {
		b := s.Built
		out.Built = &b
		out.Age = s.Age.Round(time.Second).String()
		out.AgeSeconds = s.Age.Seconds()
	}
	for _, p := range s.Providers {
		out.Providers = append(out.Providers, api.DBProvider{Name: p.Name, Version: p.Version, Processor: p.Processor, DateCaptured: p.DateCaptured, Records: p.Records})
	}
	if w := s.Warmed; w != nil {
		out.Warmed = &api.DBWarmed{Packages: w.Packages, Held: w.Held, Seconds: w.Took.Seconds(), Complete: w.Complete}
	}
	return out
}
