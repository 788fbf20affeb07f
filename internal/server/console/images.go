package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/server"
)

var severities = []string{"Critical", "High", "Medium", "Low", "Negligible", "Unknown"}

type repoRow struct {
	Tag, Full, Digest, Status, Error, Verdict string
	Counts                                    []int // by severities
	Evaluated                                 *time.Time
	// Label marks a tag that only labels the image (see buildgate.Image.Labels).
	Label bool
}

type repoGroup struct {
	Registry, Repository string
	Rows                 []repoRow
}

// splitRef splits host/repo:tag (or host/repo@digest) into registry,
// repository and tag.
func splitRef(ref string) (reg, repo, tag string) {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	reg, rest, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(reg, ".:") || reg == "localhost") {
		reg, rest = "docker.io", ref
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return reg, rest[:i], rest[i+1:]
	}
	return reg, rest, ""
}

func (c *Console) repositories(ec echo.Context) error {
	return c.repositoriesPage(ec, http.StatusOK, "", ec.QueryParam("ref"))
}

func (c *Console) repositoriesPage(ec echo.Context, status int, errMsg, ref string) error {
	ctx := ec.Request().Context()
	imgs, err := c.cfg.Store.ListImages(ctx, "", "")
	if err != nil {
		return c.fail(ec, http.StatusInternalServerError, buildgate.ErrorMessage(err))
	}
	active, _ := c.cfg.Store.ActivePolicy(ctx)
	groups := map[string]*repoGroup{}
	for i := range imgs {
		img := &imgs[i]
		counts := make([]int, len(severities))
		if img.Status == buildgate.StatusAnalyzed {
			if a, err := c.cfg.Store.Analysis(ctx, img.Digest); err == nil {
				for _, m := range a.Matches {
					counts[sevIndex(m.Severity.String())]++
				}
			}
		}
		tags := img.Tags
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, tag := range tags {
			reg, repo, t := splitRef(tag)
			if tag == "" {
				reg, repo, t = "(no registry)", img.Source, ""
			}
			key := reg + "/" + repo
			g := groups[key]
			if g == nil {
				g = &repoGroup{Registry: reg, Repository: repo}
				groups[key] = g
			}
			row := repoRow{Tag: t, Full: tag, Digest: img.Digest, Status: string(img.Status), Error: img.Error, Counts: counts,
				Label: slices.Contains(img.Labels, tag)}
			if active != nil && img.Status == buildgate.StatusAnalyzed {
				if e, err := c.cfg.Store.Evaluation(ctx, img.Digest, tag, active.ID); err == nil {
					row.Verdict = e.FinalAction
					at := e.EvaluatedAt
					row.Evaluated = &at
				}
			}
			g.Rows = append(g.Rows, row)
		}
	}
	var out []repoGroup
	for _, g := range groups {
		sort.Slice(g.Rows, func(i, j int) bool { return g.Rows[i].Tag < g.Rows[j].Tag })
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Registry != out[j].Registry {
			return out[i].Registry < out[j].Registry
		}
		return out[i].Repository < out[j].Repository
	})
	p := c.newPage(ec, "Repositories", "repositories", map[string]any{
		"Groups": out, "Severities": severities, "Ref": ref,
	})
	p.Error = errMsg
	return c.render(ec, status, "repositories", p)
}

func sevIndex(s string) int {
	for i, x := range severities {
		if strings.EqualFold(x, s) {
			return i
		}
	}
	return len(severities) - 1
}

func (c *Console) scan(ec echo.Context) error {
	ref := strings.TrimSpace(ec.FormValue("ref"))
	img, err := c.cfg.Images.Submit(ec.Request().Context(), analysis.SubmitRequest{Ref: ref, Force: ec.FormValue("force") == "on"})
	if err != nil {
		return c.repositoriesPage(ec, statusOf(err), "Scan refused: "+buildgate.ErrorMessage(err), ref)
	}
	q := url.Values{}
	if _, _, tag := splitRef(ref); tag != "" && !strings.Contains(ref, "@") {
		q.Set("tag", ref)
	}
	return ec.Redirect(http.StatusSeeOther, "/ui/images/"+url.PathEscape(img.Digest)+"?"+q.Encode())
}

type vulnRow struct {
	buildgate.Match
	Fixable bool
}

type imageData struct {
	Image      *buildgate.Image
	Tag        string
	Tab        string
	Analysis   *buildgate.Analysis
	Verdict    *policy.Verdict
	VerdictErr string
	Counts     []int
	Severities []string
	Vulns      []vulnRow
	VulnTotal  int
	Types      []string
	F          vulnFilter
	Packages   []buildgate.Package
	Pending    bool
	Digest     string
}

type vulnFilter struct {
	Severity, Fixable, Type, Q, Sort string
}

func (c *Console) imagePage(ec echo.Context) error {
	ctx := ec.Request().Context()
	digest, _ := url.PathUnescape(ec.Param("digest"))
	img, err := c.cfg.Store.Image(ctx, digest)
	if err != nil {
		return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
	}
	tab := ec.QueryParam("tab")
	switch tab {
	case "vulnerabilities", "packages", "secrets", "files", "policy":
	default:
		tab = "overview"
	}
	d := &imageData{Image: img, Tag: ec.QueryParam("tag"), Tab: tab, Severities: severities, Digest: img.Digest,
		Pending: img.Status == buildgate.StatusQueued || img.Status == buildgate.StatusAnalyzing}
	if d.Tag == "" && len(img.Tags) > 0 {
		d.Tag = img.Tags[0]
	}
	if img.Status == buildgate.StatusAnalyzed {
		a, err := c.cfg.Store.Analysis(ctx, digest)
		if err != nil {
			return c.fail(ec, statusOf(err), buildgate.ErrorMessage(err))
		}
		d.Analysis = a
		d.Counts = make([]int, len(severities))
		for _, m := range a.Matches {
			d.Counts[sevIndex(m.Severity.String())]++
		}
		if v, err := c.cfg.Policies.Check(ctx, digest, d.Tag, ""); err != nil {
			d.VerdictErr = buildgate.ErrorMessage(err)
		} else {
			d.Verdict = v
		}
		d.F = vulnFilter{Severity: ec.QueryParam("severity"), Fixable: ec.QueryParam("fixable"),
			Type: ec.QueryParam("type"), Q: strings.TrimSpace(ec.QueryParam("q")), Sort: ec.QueryParam("sort")}
		d.Vulns, d.Types = filterVulns(a.Matches, d.F)
		d.VulnTotal = len(a.Matches)
		d.Packages = append([]buildgate.Package(nil), a.Packages...)
		sort.Slice(d.Packages, func(i, j int) bool { return d.Packages[i].Name < d.Packages[j].Name })
	}
	title := digest
	if d.Tag != "" {
		title = d.Tag
	}
	return c.render(ec, http.StatusOK, "image", c.newPage(ec, title, "repositories", d))
}

func filterVulns(ms []buildgate.Match, f vulnFilter) ([]vulnRow, []string) {
	types := map[string]bool{}
	var out []vulnRow
	q := strings.ToLower(f.Q)
	for _, m := range ms {
		types[m.PackageType] = true
		fixable := m.FixState == buildgate.FixStateFixed
		if f.Severity != "" && !strings.EqualFold(m.Severity.String(), f.Severity) {
			continue
		}
		if (f.Fixable == "yes" && !fixable) || (f.Fixable == "no" && fixable) {
			continue
		}
		switch f.Type {
		case "":
		case "os":
			if !buildgate.IsOSType(m.PackageType) {
				continue
			}
		case "non-os":
			if buildgate.IsOSType(m.PackageType) {
				continue
			}
		default:
			if m.PackageType != f.Type {
				continue
			}
		}
		if q != "" && !strings.Contains(strings.ToLower(m.VulnerabilityID+" "+m.PackageName+" "+m.PackageVersion+" "+m.Description), q) {
			continue
		}
		out = append(out, vulnRow{Match: m, Fixable: fixable})
	}
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		switch f.Sort {
		case "id":
			return x.VulnerabilityID < y.VulnerabilityID
		case "package":
			if x.PackageName != y.PackageName {
				return x.PackageName < y.PackageName
			}
			return x.VulnerabilityID < y.VulnerabilityID
		case "severity-asc":
			if x.Severity != y.Severity {
				return x.Severity < y.Severity
			}
		default:
			if x.Severity != y.Severity {
				return x.Severity > y.Severity
			}
		}
		return x.VulnerabilityID < y.VulnerabilityID
	})
	var ts []string
	for t := range types {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return out, ts
}

// imageStatus answers the progress poll of the image page.
func (c *Console) imageStatus(ec echo.Context) error {
	digest, _ := url.PathUnescape(ec.Param("digest"))
	img, err := c.cfg.Store.Image(ec.Request().Context(), digest)
	if err != nil {
		return ec.JSON(statusOf(err), map[string]string{"error": buildgate.ErrorMessage(err)})
	}
	return ec.JSON(http.StatusOK, map[string]string{"status": string(img.Status), "error": img.Error})
}

var downloads = map[string]struct{ path, file string }{
	"cyclonedx": {"sbom?format=cyclonedx-json", "sbom.cdx.json"},
	"spdx":      {"sbom?format=spdx-json", "sbom.spdx.json"},
	"syft":      {"sbom?format=syft-json", "sbom.syft.json"},
	"sarif":     {"report?format=sarif", "buildgate.sarif"},
	"junit":     {"report?format=junit", "buildgate.junit.xml"},
}

// download serves a /v1 document with the session's token, as an
// attachment.
func (c *Console) download(ec echo.Context) error {
	digest, _ := url.PathUnescape(ec.Param("digest"))
	dl, ok := downloads[ec.Param("kind")]
	if !ok {
		return c.fail(ec, http.StatusNotFound, "unknown download")
	}
	s, _ := ec.Get(ctxSession).(*session)
	target := "/v1/images/" + url.PathEscape(digest) + "/" + dl.path
	if tag := ec.QueryParam("tag"); tag != "" && strings.HasPrefix(dl.path, "report") {
		target += "&tag=" + url.QueryEscape(tag)
	}
	req, err := http.NewRequestWithContext(ec.Request().Context(), http.MethodGet, target, nil)
	if err != nil {
		return c.fail(ec, http.StatusBadRequest, err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+s.secret)
	name := strings.ReplaceAll(strings.TrimPrefix(digest, "sha256:"), ":", "-")
	if len(name) > 12 {
		name = name[:12]
	}
	ec.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+"."+dl.file))
	c.cfg.API.ServeHTTP(ec.Response(), req)
	return nil
}

// statusOf answers an error with the status /v1 answers it with.
var statusOf = server.HTTPStatus
