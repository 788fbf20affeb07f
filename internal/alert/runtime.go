package alert

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/policy"
)

// Limits of an inventory.
const (
	maxContainers = 100000
	maxFieldSize  = 1024
)

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// InventoryResult says what a pushed inventory holds.
type InventoryResult struct {
	Cluster    string
	ObservedAt time.Time
	Containers int
	Images     int
	// Unscanned are the images the gate has no analysis of.
	Unscanned int
	// Scans are the unscanned images submitted for analysis, as
	// unscanned_image alerts with action scan ask (submission goes on in
	// the background).
	Scans int
}

// runningImage is the containers of one cluster that run one image.
type runningImage struct {
	ref, tag, digest string
	containers       []buildgate.RuntimeContainer
}

// PushInventory replaces what a cluster runs. Each image the gate has
// not analysed fires unscanned_image for the alerts whose scope holds one
// of its containers; when any of them has action scan and the gate has
// never seen the image, it is submitted for analysis.
func (s *Service) PushInventory(ctx context.Context, inv buildgate.RuntimeInventory) (*InventoryResult, error) {
	if err := normalizeInventory(&inv, s.Now()); err != nil {
		return nil, err
	}
	if err := s.store.ReplaceInventory(ctx, inv); err != nil {
		return nil, err
	}
	groups := groupImages(inv.Containers)
	res := &InventoryResult{Cluster: inv.Cluster, ObservedAt: inv.ObservedAt, Containers: len(inv.Containers), Images: len(groups)}
	alerts, err := s.store.ListAlerts(ctx)
	if err != nil {
		return nil, err
	}
	var scans []string
	for _, g := range groups {
		img, err := s.store.LookupImage(ctx, g.digest, g.tag)
		status := "unscanned"
		switch {
		case err == nil && img.Status == buildgate.StatusAnalyzed:
			continue
		case err == nil:
			status = string(img.Status)
		case buildgate.ErrorCode(err) != buildgate.ENOTFOUND:
			return nil, err
		}
		res.Unscanned++
		scan := false
		for _, a := range alerts {
			t, ok := trigger(a, buildgate.TriggerUnscannedImage)
			if a.Enabled && ok && t.Action == buildgate.ActionScan && slices.ContainsFunc(g.containers, func(c buildgate.RuntimeContainer) bool { return containerInScope(a.Scope, c) }) {
				scan = true
			}
		}
		// Only an image the gate never saw is submitted: a failed one
		// would be analysed again at every push.
		scan = scan && img == nil
		if scan {
			scans = append(scans, scanRef(g))
		}
		action := buildgate.ActionNotify
		if scan {
			action = buildgate.ActionScan
		}
		ident := cmp.Or(g.digest, g.tag, g.ref)
		s.dispatch(ctx, event{
			typ: buildgate.TriggerUnscannedImage, key: "unscanned_image:" + inv.Cluster + ":" + ident, containers: g.containers,
			p: payload{Type: buildgate.TriggerUnscannedImage, CreatedAt: s.Now(),
				Runtime: &runtimeInfo{Image: g.ref, ImageDigest: g.digest, Status: status, Action: action, ScanSubmitted: scan}},
		})
	}
	res.Scans = len(scans)
	if len(scans) > 0 {
		bctx := s.background(ctx)
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.scan(bctx, inv.Cluster, scans)
		}()
	}
	s.log.Info("runtime inventory replaced", "cluster", inv.Cluster, "observed_at", inv.ObservedAt,
		"containers", res.Containers, "images", res.Images, "unscanned", res.Unscanned, "scans", res.Scans)
	return res, nil
}

// scan submits running images for analysis.
func (s *Service) scan(ctx context.Context, cluster string, refs []string) {
	for _, ref := range refs {
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		img, err := s.images.Submit(sctx, buildgate.SubmitRequest{Ref: ref, Annotations: map[string]string{"buildgate.runtime.cluster": cluster}})
		cancel()
		if err != nil {
			s.log.Warn("submitting an unscanned running image", "cluster", cluster, "image", ref, "err", err)
			continue
		}
		s.log.Info("submitted an unscanned running image", "cluster", cluster, "image", ref, "digest", img.Digest)
	}
}

// scanRef is the reference to submit for a running image: by the digest
// the cluster runs, keeping the tag, when the inventory gave it.
func scanRef(g runningImage) string {
	if g.digest == "" || strings.Contains(g.ref, "@") {
		return g.ref
	}
	return g.ref + "@" + g.digest
}

// normalizeInventory validates an inventory and fills each container's
// tag and digest.
func normalizeInventory(inv *buildgate.RuntimeInventory, now time.Time) error {
	inv.Cluster = strings.TrimSpace(inv.Cluster)
	switch {
	case inv.Cluster == "":
		return buildgate.Errorf(buildgate.EINVALID, "an inventory needs its cluster")
	case len(inv.Cluster) > maxFieldSize:
		return buildgate.Errorf(buildgate.EINVALID, "cluster is longer than %d bytes", maxFieldSize)
	case len(inv.Containers) > maxContainers:
		return buildgate.Errorf(buildgate.EINVALID, "an inventory holds at most %d containers", maxContainers)
	case inv.ObservedAt.After(now.Add(time.Hour)):
		return buildgate.Errorf(buildgate.EINVALID, "observed_at %s is in the future", inv.ObservedAt.Format(time.RFC3339))
	}
	if inv.ObservedAt.IsZero() {
		inv.ObservedAt = now
	}
	inv.ObservedAt = inv.ObservedAt.UTC()
	for i := range inv.Containers {
		c := &inv.Containers[i]
		c.Cluster = inv.Cluster
		c.Image = strings.TrimSpace(c.Image)
		if c.Image == "" {
			return buildgate.Errorf(buildgate.EINVALID, "container %d (%s/%s/%s) names no image", i, c.Namespace, c.Pod, c.Container)
		}
		for _, f := range []string{c.Namespace, c.Pod, c.Container, c.Image, c.ImageDigest} {
			if len(f) > maxFieldSize {
				return buildgate.Errorf(buildgate.EINVALID, "container %d has a field longer than %d bytes", i, maxFieldSize)
			}
		}
		// image_digest as Kubernetes reports it: "docker-pullable://repo@sha256:...",
		// "repo@sha256:..." or "sha256:...".
		c.ImageDigest = digestRE.FindString(strings.ToLower(c.ImageDigest))
		if c.ImageDigest == "" {
			if _, d, ok := strings.Cut(c.Image, "@"); ok {
				c.ImageDigest = digestRE.FindString(d)
			}
		}
		c.Tag = ""
		if _, _, tag := policy.ParseTag(c.Image); tag != "" {
			c.Tag = policy.FullTag(strings.SplitN(c.Image, "@", 2)[0])
		}
	}
	return nil
}

// groupImages groups containers by the image they run: its digest when
// known, else its tag.
func groupImages(cs []buildgate.RuntimeContainer) []runningImage {
	var out []runningImage
	index := map[string]int{}
	for _, c := range cs {
		key := cmp.Or(c.ImageDigest, c.Tag, c.Image)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, runningImage{ref: c.Image, tag: c.Tag, digest: c.ImageDigest})
		}
		out[i].containers = append(out[i].containers, c)
	}
	return out
}

// RuntimeImage is one image a cluster runs, with what the gate knows of
// it.
type RuntimeImage struct {
	Image       string
	Tag         string
	ImageDigest string
	// Digest is the gate's record of the image, "" when it has none.
	Digest string
	// Status is the analysis status, or "unscanned".
	Status string
	Error  string
	// FinalAction is the stored verdict under the active policy ("" when
	// there is none).
	FinalAction string
	PolicyID    string
	// Vulnerabilities counts the image's matches by severity name
	// (lower case).
	Vulnerabilities map[string]int
	Containers      []buildgate.RuntimeContainer
}

// RuntimeImages lists the images running in a cluster and namespace (all
// when empty), with their verdicts and vulnerability counts.
func (s *Service) RuntimeImages(ctx context.Context, cluster, namespace string) ([]RuntimeImage, error) {
	cs, err := s.store.RuntimeContainers(ctx, cluster, namespace)
	if err != nil {
		return nil, err
	}
	var policyID string
	if rec, err := s.store.ActivePolicy(ctx); err == nil {
		policyID = rec.ID
	}
	out := []RuntimeImage{}
	for _, g := range groupImages(cs) {
		ri := RuntimeImage{Image: g.ref, Tag: g.tag, ImageDigest: g.digest, Status: "unscanned", Containers: g.containers}
		img, err := s.store.LookupImage(ctx, g.digest, g.tag)
		if err != nil && buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
			return nil, err
		}
		if img != nil {
			ri.Digest, ri.Status, ri.Error = img.Digest, string(img.Status), img.Error
		}
		if img != nil && img.Status == buildgate.StatusAnalyzed {
			matches, err := s.store.ImageMatches(ctx, img.Digest)
			if err != nil {
				return nil, fmt.Errorf("counting vulnerabilities of %s: %w", img.Digest, err)
			}
			ri.Vulnerabilities = severityCounts(matches)
			if policyID != "" {
				if e, err := s.store.LatestEvaluation(ctx, img.Digest, g.tag, policyID); err == nil {
					ri.FinalAction, ri.PolicyID = e.FinalAction, policyID
				}
			}
		}
		out = append(out, ri)
	}
	return out, nil
}

// severityCounts counts matches by severity, every severity present.
func severityCounts(ms []buildgate.Match) map[string]int {
	out := map[string]int{}
	for _, sev := range buildgate.Severities() {
		out[strings.ToLower(sev.String())] = 0
	}
	for _, m := range ms {
		out[strings.ToLower(m.Severity.String())]++
	}
	return out
}
