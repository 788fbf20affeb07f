package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
)

// maxAnnotations bounds the finding annotations of each level: GitHub
// shows ten errors and ten warnings a step, and the verdict takes one.
const maxAnnotations = 9

// action turns a step's result into GitHub's outputs, summary,
// annotations and pull-request comment.
type action struct {
	gh     *githubactions.Action
	in     inputs
	getenv func(string) string
	http   *http.Client
}

// finish reports the result to GitHub. Nothing here changes the exit
// code: a report that cannot be written is a warning.
func (a *action) finish(ctx context.Context, r *step.Result) {
	sarif := reportFile(r, report.FormatSARIF)
	junit := reportFile(r, report.FormatJUnit)
	markdown := reportFile(r, report.FormatMarkdown)

	var results []sarifResult
	if sarif != "" {
		var err error
		if results, err = setCategory(sarif, a.in.category); err != nil {
			a.gh.Warningf("buildgate: setting the SARIF category: %v", err)
		}
	}
	sarif = a.copyReport(sarif, a.in.sarifFile)
	junit = a.copyReport(junit, a.in.junitFile)

	a.output("verdict", r.Verdict)
	a.output("stop-count", strconv.Itoa(r.StopCount))
	a.output("warn-count", strconv.Itoa(r.WarnCount))
	a.output("new-stop-count", strconv.Itoa(r.NewStopCount))
	a.output("baseline", r.Baseline)
	a.output("sarif-file", sarif)
	a.output("junit-file", junit)
	a.output("markdown-file", markdown)
	a.output("report-url", r.ReportURL)
	a.output("image-url", r.ImageURL)
	a.output("digest", r.Digest)

	a.annotate(r, results)

	body := errorMarkdown(r)
	if markdown != "" {
		b, err := os.ReadFile(markdown)
		if err != nil {
			a.gh.Warningf("buildgate: reading the Markdown report: %v", err)
		} else {
			body = string(b)
		}
	}
	if a.in.summary && a.getenv("GITHUB_STEP_SUMMARY") != "" {
		a.fileCommand("the job summary", func() { a.gh.AddStepSummary(body) })
	}
	a.comment(ctx, body)
}

// reportFile returns the path of a format's report among the files the
// step wrote, "" when it wrote none.
func reportFile(r *step.Result, format string) string {
	name := report.FileName(format)
	for _, f := range r.Files {
		if filepath.Base(f) == name {
			return f
		}
	}
	return ""
}

// copyReport copies a report to the path an input asked for and returns
// the path to show in the outputs: dst when given, else src.
func (a *action) copyReport(src, dst string) string {
	if src == "" || dst == "" || filepath.Clean(src) == filepath.Clean(dst) {
		return src
	}
	b, err := os.ReadFile(src)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
	}
	if err != nil {
		a.gh.Warningf("buildgate: copying %s to %s: %v", src, dst, err)
		return src
	}
	return dst
}

// output sets an output when $GITHUB_OUTPUT is there (it is not when the
// binary runs outside Actions).
func (a *action) output(k, v string) {
	if a.getenv("GITHUB_OUTPUT") == "" {
		return
	}
	a.fileCommand("output "+k, func() { a.gh.SetOutput(k, v) })
}

// fileCommand runs a go-githubactions file command, which panics when it
// cannot write the file, and turns that into a warning.
func (a *action) fileCommand(what string, f func()) {
	defer func() {
		if p := recover(); p != nil {
			a.gh.Warningf("buildgate: writing %s: %v", what, p)
		}
	}()
	f()
}

// annotate writes the verdict's annotation, then one per STOP and WARN
// finding (at most maxAnnotations of each), on the Dockerfile's line when
// the SARIF result points at it.
func (a *action) annotate(r *step.Result, results []sarifResult) {
	var errs, warns []sarifResult
	for _, res := range results {
		switch res.Level {
		case "error":
			errs = append(errs, res)
		case "warning":
			warns = append(warns, res)
		}
	}
	msg := r.Summary()
	if left := max(len(errs)-maxAnnotations, 0) + max(len(warns)-maxAnnotations, 0); left > 0 {
		msg += fmt.Sprintf(" (%d more findings than annotated: see the job summary)", left)
	}
	title := map[string]string{"title": "buildgate: " + r.Outcome()}
	switch {
	case r.ExitCode != step.ExitPass:
		a.gh.WithFieldsMap(title).Errorf("%s", msg)
	case r.Err != nil || r.Verdict == step.VerdictWarn || r.Verdict == step.VerdictStop: // STOP passes only under --fail-on none or new
		a.gh.WithFieldsMap(title).Warningf("%s", msg)
	default:
		a.gh.WithFieldsMap(title).Noticef("%s", msg)
	}
	for i, res := range errs {
		if i == maxAnnotations {
			break
		}
		a.gh.WithFieldsMap(a.fields(res, "STOP")).Errorf("%s", res.Message.Text)
	}
	for i, res := range warns {
		if i == maxAnnotations {
			break
		}
		a.gh.WithFieldsMap(a.fields(res, "WARN")).Warningf("%s", res.Message.Text)
	}
}

// fields are an annotation's properties: a title, and the Dockerfile's
// path and line when a Dockerfile was given and the result points at it.
func (a *action) fields(res sarifResult, action string) map[string]string {
	f := map[string]string{"title": "buildgate " + action + ": " + res.RuleID}
	if a.in.cfg.Dockerfile == "" || len(res.Locations) == 0 || res.Locations[0].PhysicalLocation == nil {
		return f
	}
	pl := res.Locations[0].PhysicalLocation
	u, err := url.Parse(pl.ArtifactLocation.URI)
	if err != nil || u.Scheme != "" || pl.Region == nil {
		return f
	}
	f["file"] = u.Path
	f["line"] = strconv.Itoa(pl.Region.StartLine)
	return f
}

// errorMarkdown is the job summary and comment of a run without a
// verdict.
func errorMarkdown(r *step.Result) string {
	var b strings.Builder
	b.WriteString(report.MarkdownMarker + "\n")
	b.WriteString("## buildgate: **ERROR** — no verdict\n\n")
	if r.Image != "" {
		fmt.Fprintf(&b, "- **Image:** `%s`\n\n", strings.ReplaceAll(r.Image, "`", "'"))
	}
	b.WriteString("```\n" + strings.ReplaceAll(r.Line(), "```", "'''") + "\n```\n")
	return b.String()
}

// sarifResult is what the action reads of a SARIF result.
type sarifResult struct {
	RuleID  string `json:"ruleId"`
	Level   string `json:"level"`
	Message struct {
		Text string `json:"text"`
	} `json:"message"`
	Locations []struct {
		PhysicalLocation *struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region *struct {
				StartLine int `json:"startLine"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
}

// setCategory sets runAutomationDetails.id of every run of the SARIF file
// to the category (ending in "/", so that GitHub reads it all as the
// category), which github/codeql-action/upload-sarif keeps: each image
// gets its own analysis in code scanning. It returns the results.
func setCategory(path, category string) ([]sarifResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var runs []map[string]json.RawMessage
	if err := json.Unmarshal(doc["runs"], &runs); err != nil {
		return nil, fmt.Errorf("reading the runs of %s: %w", path, err)
	}
	id := strings.TrimSpace(category)
	if !strings.HasSuffix(id, "/") {
		id += "/"
	}
	details, err := json.Marshal(map[string]string{"id": id})
	if err != nil {
		return nil, err
	}
	var results []sarifResult
	for _, run := range runs {
		run["automationDetails"] = details
		var rs []sarifResult
		if raw, ok := run["results"]; ok {
			if err := json.Unmarshal(raw, &rs); err != nil {
				return nil, fmt.Errorf("reading the results of %s: %w", path, err)
			}
		}
		results = append(results, rs...)
	}
	updated := make(map[string]any, len(doc))
	for k, v := range doc {
		updated[k] = v
	}
	updated["runs"] = runs
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(updated); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return results, nil
}
