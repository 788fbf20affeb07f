package main

import (
	"encoding/json"
	"path/filepath"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
)

// resultFile is the name of the result gate-jenkins writes in the report
// directory for vars/gateScan.groovy, which returns it as a map.
const resultFile = "buildgate-result.json"

// result is the whole run: the worst verdict and exit code, the counts
// summed over the images, and each image's result. Reports holds the
// report paths (by format: junit, sarif, gitlab, markdown, json) when
// one image was gated; with several, each image has its own.
type result struct {
	Verdict          string            `json:"verdict"`
	ExitCode         int               `json:"exit_code"`
	StopCount        int               `json:"stop_count"`
	NewStopCount     int               `json:"new_stop_count"`
	WarnCount        int               `json:"warn_count"`
	AllowlistedCount int               `json:"allowlisted_count"`
	Reports          map[string]string `json:"reports,omitempty"`
	Images           []imageResult     `json:"images"`
}

// imageResult is one image's step.Result.
type imageResult struct {
	Image            string            `json:"image"`
	Digest           string            `json:"digest,omitempty"`
	Verdict          string            `json:"verdict"`
	ExitCode         int               `json:"exit_code"`
	StopCount        int               `json:"stop_count"`
	NewStopCount     int               `json:"new_stop_count"`
	WarnCount        int               `json:"warn_count"`
	AllowlistedCount int               `json:"allowlisted_count"`
	Baseline         string            `json:"baseline,omitempty"`
	Bundle           string            `json:"bundle,omitempty"`
	ImageURL         string            `json:"image_url,omitempty"`
	Line             string            `json:"line"`
	Error            string            `json:"error,omitempty"`
	Reports          map[string]string `json:"reports"`
}

// verdictRank orders verdicts: error over stop over warn over go.
var verdictRank = map[string]int{step.VerdictGo: 0, step.VerdictWarn: 1, step.VerdictStop: 2, step.VerdictError: 3}

// newResult sums up the results; exitCode is the run's exit code.
func newResult(rs []*step.Result, exitCode int) result {
	out := result{Verdict: step.VerdictGo, ExitCode: exitCode, Images: []imageResult{}}
	for _, r := range rs {
		ir := imageResult{
			Image: r.Image, Digest: r.Digest, Verdict: r.Verdict, ExitCode: r.ExitCode,
			StopCount: r.StopCount, NewStopCount: r.NewStopCount, WarnCount: r.WarnCount, AllowlistedCount: r.AllowlistedCount,
			Baseline: r.Baseline, Bundle: r.Bundle, ImageURL: r.ImageURL, Line: r.Line(), Reports: map[string]string{},
		}
		if r.Err != nil {
			ir.Error = r.Err.Error()
		}
		for _, f := range r.Files {
			for _, format := range report.Formats() {
				if filepath.Base(f) == report.FileName(format) {
					ir.Reports[format] = f
				}
			}
		}
		if verdictRank[r.Verdict] > verdictRank[out.Verdict] {
			out.Verdict = r.Verdict
		}
		out.StopCount += r.StopCount
		out.NewStopCount += r.NewStopCount
		out.WarnCount += r.WarnCount
		out.AllowlistedCount += r.AllowlistedCount
		out.Images = append(out.Images, ir)
	}
	if len(out.Images) == 1 {
		out.Reports = out.Images[0].Reports
	}
	return out
}

// marshal is the result file's content.
func (r result) marshal() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}
