package step

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/policy"
	"github.com/buildgate/buildgate/internal/report"
)

// Run gates one image: it runs Execute, writing progress lines to stdout,
// prints the Result's one line on stderr and returns the exit code.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) int {
	r := Execute(ctx, cfg, stdout)
	auth, _, _ := cfg.registryAuth()
	fmt.Fprintln(Redact(Redact(stderr, cfg.Token), auth.Password), r.Line())
	return r.ExitCode
}

// Execute gates one image and returns the result; it never returns nil.
// Progress lines go to out, the token blanked out. An invalid
// configuration is an error (exit 2) even with PassOnError.
func Execute(ctx context.Context, cfg Config, out io.Writer) *Result {
	out = Redact(Redact(out, cfg.Token), cfg.RegistryAuth.Password)
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultConfig().ProgressInterval
	}
	r := &Result{Image: cmp.Or(cfg.Image, cfg.SBOM), Verdict: VerdictError, ExitCode: ExitError, failOn: cfg.FailOn}
	if err := cfg.Validate(); err != nil {
		r.Err = fmt.Errorf("bad flags: %w", err)
		return r
	}
	hc, err := httpClient(cfg)
	if err != nil {
		r.Err = fmt.Errorf("bad flags: %w", err)
		return r
	}
	auth, from, err := cfg.registryAuth()
	if err != nil {
		r.Err = err
		return r
	}
	cfg.RegistryAuth = auth
	out = Redact(out, auth.Password)
	e := &execution{cfg: cfg, r: r, s: newSession(cfg, hc, out)}
	if from != "" {
		e.s.printf("pulling with the registry credentials of %q from %s, for %s and this submission only", auth.Username, from, RegistryHost(cfg.Image))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := e.run(ctx); err != nil {
		e.fail(ctx, err)
	}
	return r
}

// execution is one run of Execute.
type execution struct {
	cfg   Config
	r     *Result
	s     *session
	phase string
	// status is the image's last known status.
	status string
}

func (e *execution) run(ctx context.Context) error {
	cfg, r, s := e.cfg, e.r, e.s
	start := time.Now()
	if err := RemoveReports(cfg.OutDir); err != nil {
		return explained{err}
	}
	dockerfile, err := readDockerfile(cfg.Dockerfile)
	if err != nil {
		return explained{err}
	}
	vex, err := readVEX(cfg.VEX)
	if err != nil {
		return explained{err}
	}

	var img *api.Image
	var src source
	switch {
	case cfg.SBOM != "":
		e.phase = "sending the SBOM " + cfg.SBOM
		img, err = s.submitSBOM(ctx, cfg.SBOM, dockerfile)
	default:
		src, _ = parseSource(cfg.Image)
		if src.local() {
			e.phase = "uploading " + src.describe()
			s.printf("uploading %s to %s", src.describe(), redactURL(s.base))
			img, err = s.submitLocal(ctx, src, dockerfile)
		} else {
			e.phase = "submitting " + src.arg
			img, err = s.submitRegistry(ctx, src.arg, dockerfile)
		}
	}
	if err != nil {
		return err
	}
	r.Digest = img.Digest
	r.ReportURL = redactURL(s.base) + "/v1/images/" + img.Digest + "/report?format=markdown"
	r.ImageURL = report.ImageURL(redactURL(s.base), img.Digest)
	e.status = img.Status
	s.printf("submitted %s as %s (%s)", r.Image, img.Digest, img.Status)

	if img.Status != api.StatusAnalyzed && img.Status != api.StatusFailed {
		e.phase = "waiting for the analysis of " + img.Digest
		if img, err = s.wait(ctx, img.Digest, start, &e.status); err != nil {
			return err
		}
	}
	if img.Status == api.StatusFailed {
		return explained{fmt.Errorf("the analysis of %s (%s) failed: %s", r.Image, img.Digest, cmp.Or(img.Error, "no reason given"))}
	}

	bl, err := e.resolveBaseline(ctx, img.Digest, dockerfile)
	var nb noBaseline
	switch {
	case errors.As(err, &nb):
		s.printf("%s: every finding is judged", nb.why)
	case err != nil:
		return err
	case bl != nil:
		s.printf("baseline %s: %s", bl.ref, bl.digest)
	}

	e.phase = "fetching the verdict of " + img.Digest
	tag := cfg.Tag
	if tag == "" && src.kind == sourceRegistry && !strings.Contains(src.arg, "@") {
		tag = src.arg
	}
	if cfg.Subscribe {
		e.subscribe(ctx, tag)
	}
	v, err := s.check(ctx, img.Digest, tag, bl, vex)
	if err != nil {
		return err
	}
	e.verdict(v)
	line := fmt.Sprintf("verdict %s (%d stop, %d warn findings", strings.ToUpper(r.Verdict), r.StopCount, r.WarnCount)
	if r.Baseline != "" {
		line += fmt.Sprintf("; %d stop findings new against the baseline %s", r.NewStopCount, r.Baseline)
	}
	s.printf("%s)", line)
	e.findingsTable(&v.Evaluation)

	e.phase = "fetching the findings of " + img.Digest
	vulns, err := s.vulnerabilities(ctx, img.Digest)
	if err != nil {
		return err
	}
	r.Vulnerabilities = len(vulns.Vulnerabilities)
	meta, err := s.metadata(ctx, img.Digest)
	if err != nil {
		// The metadata only enrich the reports.
		s.printf("no image metadata for the reports: %v", err)
		meta = &api.Metadata{}
	}

	e.phase = "writing the reports"
	in := report.Input{
		Evaluation: &v.Evaluation,
		Image: report.ImageInfo{
			Digest: img.Digest, Ref: reportRef(cfg, src), Tags: img.Tags,
			Distro: meta.Distro, DistroVersion: meta.DistroVersion, OS: meta.OS, Arch: meta.Arch,
			DockerfilePath: dockerfilePath(cfg.Dockerfile), Dockerfile: dockerfile,
		},
		Matches: Matches(vulns.Vulnerabilities),
		GateURL: r.ImageURL,
		FailOn:  cfg.FailOn,
		Scanner: report.ScannerInfo{Name: "buildgate", Version: cfg.Version, StartTime: start.UTC(), EndTime: time.Now().UTC()},
	}
	if vulns.DBBuilt != nil {
		in.DB.Built = *vulns.DBBuilt
	} else if v.DBBuilt != nil {
		in.DB.Built = *v.DBBuilt
	}
	if err := e.writeReports(in); err != nil {
		return err
	}
	if cfg.CycloneDX {
		e.writeCycloneDX(ctx, img.Digest)
	}
	for _, f := range r.Files {
		s.printf("wrote %s", f)
	}
	return nil
}

// subscribe subscribes the tag to tag updates. Like Anchore's
// autoSubscribeTagUpdates it does not change the outcome: a failure is a
// line in the log.
func (e *execution) subscribe(ctx context.Context, tag string) {
	if tag == "" {
		e.s.printf("not subscribing: the image has no tag (give --tag)")
		return
	}
	switch err := e.s.subscribe(ctx, tag); {
	case err != nil:
		var ge *client.Error
		if errors.As(err, &ge) && ge.Status == http.StatusForbidden {
			err = errors.New("the token may not (subscriptions need a token of role admin)")
		}
		e.s.printf("not subscribed to updates of %s: %v", tag, err)
	default:
		e.s.printf("subscribed to updates of %s", tag)
	}
}

// verdict records the gate's verdict in the result.
func (e *execution) verdict(v *policy.Verdict) {
	r := e.r
	r.Evaluation = v
	r.Verdict = v.FinalAction.String()
	r.Bundle = cmp.Or(v.BundleName, v.BundleID)
	r.BundleVersion = v.BundleVersion
	r.StopCount, r.WarnCount, r.AllowlistedCount = countFindings(&v.Evaluation)
	r.NewStopCount = countNewStop(&v.Evaluation)
	if v.Baseline != nil {
		r.Baseline = v.Baseline.Name()
	}
	r.ExitCode = report.ExitCode(&v.Evaluation, e.cfg.FailOn)
}

// logTableRows bounds the findings table of the job log.
const logTableRows = 50

// findingsTable prints the findings for people reading the job log,
// STOP first, cut at logTableRows with a line naming the reports that
// hold every finding. Like every progress line, it does not change the
// outcome when the log cannot be written.
func (e *execution) findingsTable(ev *policy.Evaluation) {
	left, _ := report.FindingsTable(e.s.out, ev, e.cfg.FailOn, logTableRows)
	if left > 0 {
		var all []string
		for _, f := range []string{report.FormatJSON, report.FormatJUnit} {
			all = append(all, filepath.Join(e.cfg.OutDir, report.FileName(f)))
		}
		e.s.printf("… and %d more (see %s)", left, strings.Join(all, ", "))
	}
}

// countFindings counts the findings the way the reports show them: STOP
// findings fail only a STOP verdict and nothing fails or warns for an
// allowlisted image.
func countFindings(ev *policy.Evaluation) (stop, warn, allowlisted int) {
	for _, f := range ev.Findings {
		switch {
		case f.Allowlisted != nil:
			allowlisted++
		case f.Action == policy.ActionGo, ev.Reason == policy.ReasonAllowlistedImage:
		case f.Action == policy.ActionStop && ev.FinalAction == policy.ActionStop:
			stop++
		case f.Action == policy.ActionWarn:
			warn++
		}
	}
	return stop, warn, allowlisted
}

// countNewStop counts the STOP findings that count towards a STOP verdict
// and that the baseline does not have.
func countNewStop(ev *policy.Evaluation) int {
	n := 0
	for i := range ev.Findings {
		f := &ev.Findings[i]
		if f.Allowlisted == nil && f.Action == policy.ActionStop && ev.FinalAction == policy.ActionStop &&
			ev.Reason != policy.ReasonAllowlistedImage && ev.IsNew(f) {
			n++
		}
	}
	return n
}

// fail turns an error into the result. An error after a failing verdict
// keeps the verdict's exit code: a broken report must not hide a STOP,
// even with --on-error pass.
func (e *execution) fail(ctx context.Context, err error) {
	r := e.r
	err = e.explain(ctx, err)
	if r.Evaluation != nil && r.ExitCode == ExitFail {
		r.markdown = ""
		r.Files = nil
		r.problem = err.Error()
		return
	}
	r.Err = err
	r.Verdict = VerdictError
	r.ExitCode = ExitError
	if e.cfg.PassOnError {
		r.passErr = true
		r.ExitCode = ExitPass
	}
}

// explain says what went wrong in words a CI log reader can act on.
func (e *execution) explain(ctx context.Context, err error) error {
	base := redactURL(e.s.base)
	var ge *client.Error
	var ex explained
	switch {
	case errors.As(err, &ex):
		return ex.error
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg := fmt.Sprintf("timed out after %s %s", e.cfg.Timeout, e.phase)
		if e.status != "" && e.status != api.StatusAnalyzed {
			msg += " (status " + e.status + ")"
		}
		return fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while %s: %w", e.phase, ctx.Err())
	case errors.As(err, &ge):
		switch ge.Status {
		case 401:
			return fmt.Errorf("the gate at %s refused the token (%d %s: %s)", base, ge.Status, ge.Code, ge.Message)
		case 403:
			return fmt.Errorf("the token may not do this (%s): %d %s: %s", e.phase, ge.Status, ge.Code, ge.Message)
		}
		return fmt.Errorf("%s: %w", e.phase, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: the gate did not answer within %s", e.phase, callTimeout)
	case isTransport(err):
		return fmt.Errorf("gate unreachable at %s: %w", base, innermost(err))
	}
	return fmt.Errorf("%s: %w", e.phase, err)
}

// explained is an error that says all there is to say.
type explained struct{ error }

func (e explained) Unwrap() error { return e.error }

// innermost returns what net/http wrapped: "dial tcp ...: connection
// refused".
func innermost(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// writeReports renders every format into OutDir.
func (e *execution) writeReports(in report.Input) error {
	dir := e.cfg.OutDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the report directory: %w", err)
	}
	var files []string
	for _, f := range report.Formats() {
		var buf bytes.Buffer
		if err := report.Render(f, &buf, in); err != nil {
			return err
		}
		path := filepath.Join(dir, report.FileName(f))
		if err := writeFile(path, buf.Bytes()); err != nil {
			return err
		}
		files = append(files, path)
	}
	e.r.Files = files
	e.r.markdown = filepath.Join(dir, report.FileName(report.FormatMarkdown))
	return nil
}

// CycloneDXFile is the name of the image's CycloneDX SBOM in the report
// directory (Config.CycloneDX), as GitLab names its own.
const CycloneDXFile = "gl-sbom-report.cdx.json"

// writeCycloneDX writes the image's CycloneDX SBOM beside the reports.
// The SBOM only adds to the reports: a failure is a line in the log.
func (e *execution) writeCycloneDX(ctx context.Context, digest string) {
	sbom, err := call(ctx, func(ctx context.Context) (json.RawMessage, error) {
		var b json.RawMessage
		return b, e.s.c.Do(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(digest)+"/sbom?format=cyclonedx-json", nil, &b)
	})
	path := filepath.Join(e.cfg.OutDir, CycloneDXFile)
	if err == nil {
		err = writeFile(path, sbom)
	}
	if err != nil {
		e.s.printf("no CycloneDX SBOM: %v", err)
		return
	}
	e.r.Files = append(e.r.Files, path)
}

// writeFile writes through a temporary file, so a reader never sees half
// a report.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// RemoveReports deletes the reports a previous run left in dir (only the
// report files and the CycloneDX SBOM), so that a CI system never shows
// them as this run's.
func RemoveReports(dir string) error {
	names := []string{CycloneDXFile}
	for _, f := range report.Formats() {
		names = append(names, report.FileName(f))
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("removing the previous report %s: %w", p, err)
		}
	}
	return nil
}

// readDockerfile reads the Dockerfile, "" when none was given.
func readDockerfile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading the Dockerfile: %w", err)
	}
	if fi.Size() > maxDockerfileSize {
		return "", fmt.Errorf("the Dockerfile %s is larger than %d bytes", path, maxDockerfileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the Dockerfile: %w", err)
	}
	return string(b), nil
}

// dockerfilePath is the Dockerfile's path for SARIF locations: relative
// to the working directory (the checkout in CI) when it lies inside it.
func dockerfilePath(p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
				p = rel
			}
		}
	}
	return filepath.ToSlash(filepath.Clean(p))
}

// reportRef is the image's name in the reports: --tag, else the registry
// reference or the daemon's image name; "" lets the reports use the
// gate's tag or the digest.
func reportRef(cfg Config, src source) string {
	switch {
	case cfg.Tag != "":
		return cfg.Tag
	case src.kind == sourceRegistry, src.kind == sourceDocker:
		return src.arg
	}
	return ""
}

// openSBOM opens an SBOM document.
func openSBOM(path string) (io.ReadCloser, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening the SBOM: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("the SBOM %s is not a file", path)
	}
	return f, fi.Size(), nil
}

// Matches converts the gate's vulnerability list into the domain's
// matches, field for field.
func Matches(vs []api.Vulnerability) []buildgate.Match {
	out := make([]buildgate.Match, 0, len(vs))
	for _, v := range vs {
		m := buildgate.Match{
			VulnerabilityID: v.ID,
			Severity:        buildgate.SeverityOf(v.Severity),
			Description:     v.Description,
			Namespace:       v.Namespace,
			DataSource:      v.DataSource,
			URLs:            v.URLs,
			RelatedIDs:      v.RelatedIDs,
			PackageName:     v.PackageName,
			PackageVersion:  v.PackageVersion,
			PackageType:     v.PackageType,
			PackagePath:     v.PackagePath,
			FixState:        buildgate.FixState(v.FixState),
			FixVersions:     v.FixVersions,
			FixedAt:         v.FixedAt,
			PublishedAt:     v.PublishedAt,
			KEV:             v.KEV,
			EPSS:            v.EPSS,
			EPSSPercentile:  v.EPSSPercentile,
		}
		for _, c := range v.CVSS {
			m.CVSS = append(m.CVSS, buildgate.CVSS{
				Version: c.Version, Vector: c.Vector, Source: c.Source, Type: c.Type,
				BaseScore: c.BaseScore, ExploitabilityScore: c.ExploitabilityScore, ImpactScore: c.ImpactScore,
			})
		}
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Redact returns a writer that replaces the token with "[redacted]" in
// everything written through it. Each Write is handled alone, so callers
// write whole lines.
func Redact(w io.Writer, token Token) io.Writer {
	if token == "" {
		return w
	}
	if rw, ok := w.(*redactor); ok && rw.token == string(token) {
		return w
	}
	return &redactor{w: w, token: string(token)}
}

type redactor struct {
	w     io.Writer
	token string
}

func (r *redactor) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(r.token)) {
		return r.w.Write(p)
	}
	if _, err := r.w.Write(bytes.ReplaceAll(p, []byte(r.token), []byte(redacted))); err != nil {
		return 0, err
	}
	return len(p), nil
}
