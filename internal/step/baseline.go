package step

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/policy"
)

// Baseline values of --baseline besides an image reference or digest.
const (
	BaselineNone = "none"
	BaselineAuto = "auto"
)

// Target is the branch a pull or merge request goes into, for --baseline
// auto: the images the gate stored with Annotations (all of them) are
// that branch's.
type Target struct {
	// Branch names the branch in messages: "main".
	Branch string
	// Annotations select the branch's images, e.g. github.repository and
	// github.ref=refs/heads/main.
	Annotations map[string]string
}

// baseline is a resolved baseline: an analysed image on the gate.
type baseline struct {
	digest string
	// ref says how it was found: "debian:11", "auto: main", "auto: FROM
	// debian:11".
	ref string
}

// noBaseline is a baseline that --baseline auto could not find: the step
// says why and judges every finding.
type noBaseline struct{ why string }

func (n noBaseline) Error() string { return n.why }

// resolveBaseline finds the baseline of image digest, analysing it first
// when the gate has not yet. It returns nil for --baseline none. Under
// auto a missing baseline is a noBaseline; a given reference or digest
// that does not resolve is an error.
func (e *execution) resolveBaseline(ctx context.Context, digest, dockerfile string) (*baseline, error) {
	arg := strings.TrimSpace(e.cfg.Baseline)
	switch arg {
	case "", BaselineNone:
		return nil, nil
	case BaselineAuto:
		return e.autoBaseline(ctx, digest, dockerfile)
	}
	e.phase = "resolving the baseline " + arg
	var img *api.Image
	var err error
	if isDigest(arg) {
		img, err = call(ctx, func(ctx context.Context) (*api.Image, error) { return e.s.c.Image(ctx, arg) })
		var ge *client.Error
		if errors.As(err, &ge) && ge.Status == http.StatusNotFound {
			return nil, explained{fmt.Errorf("the baseline %s is not known to the gate: give an image reference, or gate that image first", arg)}
		}
	} else {
		img, err = e.s.submitBaseline(ctx, arg)
	}
	if err != nil {
		return nil, err
	}
	if img, err = e.analysedBaseline(ctx, arg, img); err != nil {
		return nil, err
	}
	return &baseline{digest: img.Digest, ref: arg}, nil
}

// analysedBaseline waits for a baseline's analysis, with progress lines.
func (e *execution) analysedBaseline(ctx context.Context, arg string, img *api.Image) (*api.Image, error) {
	if img.Status != api.StatusAnalyzed && img.Status != api.StatusFailed {
		e.s.printf("the baseline %s (%s) is not analysed yet: analysing it first", arg, img.Digest)
		e.phase = "waiting for the analysis of the baseline " + img.Digest
		status := img.Status
		var err error
		if img, err = e.s.wait(ctx, img.Digest, time.Now(), &status); err != nil {
			return nil, err
		}
	}
	if img.Status == api.StatusFailed {
		return nil, explained{fmt.Errorf("the analysis of the baseline %s (%s) failed: %s", arg, img.Digest, cmp.Or(img.Error, "no reason given"))}
	}
	return img, nil
}

// autoBaseline is --baseline auto: the last analysed image of the target
// branch, else the Dockerfile's final FROM image.
func (e *execution) autoBaseline(ctx context.Context, digest, dockerfile string) (*baseline, error) {
	var tried []string
	if t := e.cfg.Target; t != nil && len(t.Annotations) > 0 {
		e.phase = "looking for the last image of " + t.Branch
		img, err := e.s.lastImage(ctx, t.Annotations)
		if err != nil {
			return nil, err
		}
		if img != nil {
			return &baseline{digest: img.Digest, ref: "auto: " + t.Branch}, nil
		}
		tried = append(tried, "no analysed image of the target branch "+t.Branch)
	} else {
		tried = append(tried, "not a pull or merge request")
	}
	from := finalFrom(dockerfile)
	switch {
	case dockerfile == "":
		tried = append(tried, "no Dockerfile")
	case from == "":
		tried = append(tried, "the Dockerfile's final FROM names no image")
	default:
		e.phase = "resolving the baseline " + from
		img, err := e.s.submitBaseline(ctx, from)
		if err == nil {
			img, err = e.analysedBaseline(ctx, from, img)
		}
		if err == nil {
			return &baseline{digest: img.Digest, ref: "auto: FROM " + from}, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		tried = append(tried, fmt.Sprintf("the FROM image %s: %v", from, e.explain(ctx, err)))
	}
	return nil, noBaseline{"no baseline found (" + strings.Join(tried, "; ") + ")"}
}

// finalFrom is the image the Dockerfile's last stage starts from, following
// stage names; "" for scratch, an image named by a build argument, or no
// FROM.
func finalFrom(dockerfile string) string {
	stages := map[string]string{}
	last := ""
	for _, in := range policy.ParseDockerfile(dockerfile) {
		if in.Cmd != "FROM" {
			continue
		}
		var args []string
		for _, a := range in.Args {
			if !strings.HasPrefix(a, "--") {
				args = append(args, a)
			}
		}
		if len(args) == 0 {
			continue
		}
		from := args[0]
		if base, ok := stages[strings.ToLower(from)]; ok {
			from = base
		}
		if len(args) == 3 && strings.EqualFold(args[1], "AS") {
			stages[strings.ToLower(args[2])] = from
		}
		last = from
	}
	if last == "" || strings.EqualFold(last, "scratch") || strings.Contains(last, "$") {
		return ""
	}
	return last
}

// isDigest reports whether s is "sha256:" and 64 hex digits.
func isDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	return ok && len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// submitBaseline asks the gate to analyse a baseline image, without the
// step's tag and annotations: it is not this build's image.
func (s *session) submitBaseline(ctx context.Context, ref string) (*api.Image, error) {
	req := api.SubmitImageRequest{Ref: ref}
	return s.withRetry(ctx, "submitting the baseline "+ref, func() (*api.Image, error) {
		return call(ctx, func(ctx context.Context) (*api.Image, error) { return s.c.SubmitImage(ctx, req) })
	})
}

// lastImage is the analysed image with every annotation of want that was
// analysed last, nil when there is none.
func (s *session) lastImage(ctx context.Context, want map[string]string) (*api.Image, error) {
	q := url.Values{"status": {api.StatusAnalyzed}}
	for _, k := range sortedKeys(want) {
		q.Add("annotation", k+"="+want[k])
	}
	list, err := call(ctx, func(ctx context.Context) (*api.ImageList, error) {
		var l api.ImageList
		return &l, s.c.Do(ctx, http.MethodGet, "/v1/images?"+q.Encode(), nil, &l)
	})
	if err != nil {
		return nil, err
	}
	// A gate that does not know the filter answers with every image:
	// only those with the annotations count.
	var imgs []api.Image
	for _, img := range list.Images {
		if hasAnnotations(img.Annotations, want) {
			imgs = append(imgs, img)
		}
	}
	if len(imgs) == 0 {
		return nil, nil
	}
	analysedAt := func(img *api.Image) time.Time {
		if img.AnalyzedAt != nil {
			return *img.AnalyzedAt
		}
		return img.UpdatedAt
	}
	sort.SliceStable(imgs, func(i, j int) bool { return analysedAt(&imgs[i]).After(analysedAt(&imgs[j])) })
	return &imgs[0], nil
}

// hasAnnotations reports whether have holds every annotation of want.
func hasAnnotations(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
