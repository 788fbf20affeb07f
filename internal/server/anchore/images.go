package anchore

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/policy"
)

// Anchore's analysis states.
const (
	statusNotAnalyzed    = "not_analyzed"
	statusAnalyzing      = "analyzing"
	statusAnalyzed       = "analyzed"
	statusAnalysisFailed = "analysis_failed"
)

// analysisStatus maps the gate's status to Anchore's.
func analysisStatus(s buildgate.Status) string {
	switch s {
	case buildgate.StatusAnalyzing:
		return statusAnalyzing
	case buildgate.StatusAnalyzed:
		return statusAnalyzed
	case buildgate.StatusFailed:
		return statusAnalysisFailed
	}
	return statusNotAnalyzed
}

// gateStatus maps Anchore's analysis status to the gate's, for filters.
func gateStatus(s string) (buildgate.Status, error) {
	switch s {
	case "":
		return "", nil
	case statusNotAnalyzed:
		return buildgate.StatusQueued, nil
	case statusAnalyzing:
		return buildgate.StatusAnalyzing, nil
	case statusAnalyzed:
		return buildgate.StatusAnalyzed, nil
	case statusAnalysisFailed:
		return buildgate.StatusFailed, nil
	}
	return "", buildgate.Errorf(buildgate.EINVALID, "unknown analysis_status %q (want not_analyzed, analyzing, analyzed or analysis_failed)", s)
}

// imageRecord is Anchore's image record.
type imageRecord struct {
	ImageDigest    string            `json:"imageDigest"`
	ParentDigest   string            `json:"parentDigest"`
	AnalysisStatus string            `json:"analysis_status"`
	ImageStatus    string            `json:"image_status"`
	ImageType      string            `json:"image_type"`
	AnalyzedAt     *string           `json:"analyzed_at"`
	CreatedAt      string            `json:"created_at"`
	LastUpdated    string            `json:"last_updated"`
	Annotations    map[string]string `json:"annotations"`
	ImageContent   imageContent      `json:"image_content"`
	ImageDetail    []imageDetail     `json:"image_detail"`
	RecordVersion  string            `json:"record_version"`
	UserID         string            `json:"userId"`
}

type imageContent struct {
	Metadata contentMetadata `json:"metadata"`
}

// contentMetadata is null field by field until the image is analysed.
type contentMetadata struct {
	DockerfileMode *string `json:"dockerfile_mode"`
	Distro         *string `json:"distro"`
	DistroVersion  *string `json:"distro_version"`
	ImageSize      *int64  `json:"image_size"`
	Arch           *string `json:"arch"`
	LayerCount     *int    `json:"layer_count"`
}

type imageDetail struct {
	ImageID       string  `json:"imageId"`
	ImageDigest   string  `json:"imageDigest"`
	FullTag       string  `json:"fulltag"`
	FullDigest    string  `json:"fulldigest"`
	Digest        string  `json:"digest"`
	Registry      string  `json:"registry"`
	Repo          string  `json:"repo"`
	Tag           string  `json:"tag"`
	TagDetectedAt string  `json:"tag_detected_at"`
	CreatedAt     string  `json:"created_at"`
	LastUpdated   string  `json:"last_updated"`
	Dockerfile    *string `json:"dockerfile"`
	UserID        string  `json:"userId"`
}

// userID is the account Anchore clients see: the gate has one.
const userID = "admin"

// imageID returns Anchore's imageId (the config digest's hex) of an
// analysed image, or "" before analysis.
func imageID(md *buildgate.Metadata) string {
	if md == nil {
		return ""
	}
	return strings.TrimPrefix(md.ImageID, "sha256:")
}

// record builds Anchore's record of an image.
func (a *API) record(ctx context.Context, img *buildgate.Image) (imageRecord, error) {
	origin, err := a.cfg.Store.ImageOrigin(ctx, img.Digest)
	if err != nil {
		return imageRecord{}, err
	}
	var md *buildgate.Metadata
	if img.Status == buildgate.StatusAnalyzed {
		if md, err = a.cfg.Store.ImageMetadata(ctx, img.Digest); err != nil && buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
			return imageRecord{}, err
		}
	}
	rec := imageRecord{
		ImageDigest:    img.Digest,
		ParentDigest:   img.Digest,
		AnalysisStatus: analysisStatus(img.Status),
		ImageStatus:    "active",
		ImageType:      "docker",
		AnalyzedAt:     isoTimePtr(img.AnalyzedAt),
		CreatedAt:      isoTime(img.CreatedAt),
		LastUpdated:    isoTime(img.UpdatedAt),
		Annotations:    img.Annotations,
		ImageDetail:    []imageDetail{},
		RecordVersion:  "v1",
		UserID:         userID,
	}
	if origin.IndexDigest != "" {
		rec.ParentDigest = origin.IndexDigest
	}
	if rec.Annotations == nil {
		rec.Annotations = map[string]string{}
	}
	m := &rec.ImageContent.Metadata
	if img.Dockerfile != "" {
		m.DockerfileMode = ptr("Actual")
	}
	if md != nil {
		if m.DockerfileMode == nil {
			m.DockerfileMode = ptr("Guessed")
		}
		m.Distro, m.DistroVersion, m.Arch = ptr(md.Distro), ptr(md.DistroVersion), ptr(md.Arch)
		m.ImageSize, m.LayerCount = ptr(md.Size), ptr(md.LayerCount)
	}
	var dockerfile *string
	if img.Dockerfile != "" {
		dockerfile = ptr(base64.StdEncoding.EncodeToString([]byte(img.Dockerfile)))
	}
	detail := func(fulltag, registry, repo, tag string, seen time.Time) imageDetail {
		fulldigest := img.Digest
		if repo != "" {
			fulldigest = registry + "/" + repo + "@" + img.Digest
		}
		return imageDetail{
			ImageID: imageID(md), ImageDigest: img.Digest, FullTag: fulltag, FullDigest: fulldigest, Digest: img.Digest,
			Registry: registry, Repo: repo, Tag: tag, TagDetectedAt: isoTime(seen),
			CreatedAt: isoTime(img.CreatedAt), LastUpdated: isoTime(img.UpdatedAt), Dockerfile: dockerfile, UserID: userID,
		}
	}
	for _, t := range img.Tags {
		seen, ok := origin.TagsSeen[t]
		if !ok {
			seen = img.CreatedAt
		}
		registry, repo, tag := policy.ParseTag(t)
		rec.ImageDetail = append(rec.ImageDetail, detail(registry+"/"+repo+":"+tag, registry, repo, tag, seen))
	}
	if len(rec.ImageDetail) == 0 {
		// Anchore clients read image_detail[0]: an image without a tag
		// (submitted by digest, uploaded) still gets one entry.
		var registry, repo string
		if origin.PullRef != "" {
			registry, repo, _ = policy.ParseTag(origin.PullRef)
		}
		rec.ImageDetail = append(rec.ImageDetail, detail("", registry, repo, "", img.CreatedAt))
	}
	return rec, nil
}

func ptr[T any](v T) *T { return &v }

func (a *API) records(ctx context.Context, imgs []buildgate.Image) ([]imageRecord, error) {
	out := make([]imageRecord, 0, len(imgs))
	for i := range imgs {
		rec, err := a.record(ctx, &imgs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// addImageRequest is the body of POST /images.
type addImageRequest struct {
	Tag         string         `json:"tag"`
	Digest      string         `json:"digest"`
	Dockerfile  string         `json:"dockerfile"`
	Annotations map[string]any `json:"annotations"`
}

// decodeDockerfile reads the base64 Dockerfile of an image add.
func decodeDockerfile(s string) (string, error) {
	s = strings.Join(strings.Fields(s), "")
	if s == "" {
		return "", nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return "", buildgate.Errorf(buildgate.EINVALID, "input dockerfile data must be base64 encoded: %v", err)
		}
	}
	return string(b), nil
}

// addImage queues an image by tag: POST /images?autosubscribe=&force=,
// body {"tag", "dockerfile" (base64), "annotations"}.
func (a *API) addImage(c echo.Context) error {
	var req addImageRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	force, err := boolParam(c, "force", false)
	if err != nil {
		return err
	}
	autosubscribe, err := boolParam(c, "autosubscribe", false)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Tag) == "" {
		return buildgate.Errorf(buildgate.EINVALID, "the body needs a tag: {\"tag\": \"registry/repository:tag\"}")
	}
	dockerfile, err := decodeDockerfile(req.Dockerfile)
	if err != nil {
		return err
	}
	var ann map[string]string
	if len(req.Annotations) > 0 {
		ann = make(map[string]string, len(req.Annotations))
		for k, v := range req.Annotations {
			if s, ok := v.(string); ok {
				ann[k] = s
			} else {
				ann[k] = fmt.Sprint(v)
			}
		}
	}
	ctx := c.Request().Context()
	img, err := a.cfg.Images.Submit(ctx, analysis.SubmitRequest{Ref: strings.TrimSpace(req.Tag), Dockerfile: dockerfile, Annotations: ann, Force: force})
	if err != nil {
		return err
	}
	// Anchore keeps every subscription of a tag it has seen; autosubscribe
	// turns on tag_update, for tokens that may write subscriptions. A ci
	// token's autosubscribe adds the image and the inactive subscriptions
	// and activates nothing (/v1 and the console keep the same rule).
	var activate []string
	if t, _ := c.Get(tokenKey).(*buildgate.Token); autosubscribe && t != nil && t.Role.Can(buildgate.ActWriteSubscriptions) {
		activate = []string{buildgate.SubscriptionTagUpdate}
	}
	if err := a.cfg.Store.EnsureSubscriptions(ctx, policy.FullTag(req.Tag), buildgate.SubscriptionTypes(), activate); err != nil {
		return err
	}
	rec, err := a.record(ctx, img)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []imageRecord{rec})
}

// listImages answers GET /images, with ?fulltag= (or ?tag=, or a JSON body
// {"tag"} as anchore-cli's fallback sends), ?analysis_status= and
// ?history=. Without history only the image the tag points at now (the one
// it was last seen on) is listed; an unknown tag is an empty list.
func (a *API) listImages(c echo.Context) error {
	tag := c.QueryParam("fulltag")
	if tag == "" {
		tag = c.QueryParam("tag")
	}
	if tag == "" {
		var body struct {
			Tag string `json:"tag"`
		}
		if err := decodeBody(c, &body); err == nil {
			tag = body.Tag
		}
	}
	history, err := boolParam(c, "history", false)
	if err != nil {
		return err
	}
	status, err := gateStatus(c.QueryParam("analysis_status"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	full := ""
	if strings.TrimSpace(tag) != "" {
		full = policy.FullTag(tag)
	}
	imgs, err := a.cfg.Store.ListImages(ctx, full, status)
	if err != nil {
		return err
	}
	if full != "" && !history && len(imgs) > 1 {
		latest, when := 0, time.Time{}
		for i := range imgs {
			o, err := a.cfg.Store.ImageOrigin(ctx, imgs[i].Digest)
			if err != nil {
				return err
			}
			if t := o.TagsSeen[full]; t.After(when) {
				latest, when = i, t
			}
		}
		imgs = imgs[latest : latest+1]
	}
	recs, err := a.records(ctx, imgs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, recs)
}

// image returns the image named by the :digest path parameter.
func (a *API) image(c echo.Context) (*buildgate.Image, error) {
	d, err := pathParam(c, "digest")
	if err != nil {
		return nil, err
	}
	img, err := a.cfg.Store.Image(c.Request().Context(), d)
	if buildgate.ErrorCode(err) == buildgate.ENOTFOUND {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "image not found in DB: %s", d)
	}
	return img, err
}

func (a *API) getImage(c echo.Context) error {
	img, err := a.image(c)
	if err != nil {
		return err
	}
	rec, err := a.record(c.Request().Context(), img)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []imageRecord{rec})
}

// imageByID finds an image by its image id (config digest, with or
// without sha256:).
func (a *API) imageByID(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	id = strings.TrimPrefix(id, "sha256:")
	ctx := c.Request().Context()
	imgs, err := a.cfg.Store.ListImages(ctx, "", buildgate.StatusAnalyzed)
	if err != nil {
		return err
	}
	for i := range imgs {
		md, err := a.cfg.Store.ImageMetadata(ctx, imgs[i].Digest)
		if err != nil {
			continue
		}
		if imageID(md) == id {
			rec, err := a.record(ctx, &imgs[i])
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, []imageRecord{rec})
		}
	}
	return buildgate.Errorf(buildgate.ENOTFOUND, "image not found in DB: imageId %s", id)
}

// deleteImage deletes an image; one under analysis only with force.
func (a *API) deleteImage(c echo.Context) error {
	img, err := a.image(c)
	if err != nil {
		return err
	}
	force, err := boolParam(c, "force", false)
	if err != nil {
		return err
	}
	if img.Status == buildgate.StatusAnalyzing && !force {
		return buildgate.Errorf(buildgate.ECONFLICT, "cannot delete image that is being analyzed (use force=True): %s", img.Digest)
	}
	if err := a.cfg.Store.DeleteImage(c.Request().Context(), img.Digest); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"digest": img.Digest, "status": "deleting", "detail": ""})
}

// analysed returns the image and its analysis, or Anchore's 404 naming
// the analysis status while it is not analysed (analysis_failed when the
// analysis failed, so clients stop waiting).
func (a *API) analysed(c echo.Context) (*buildgate.Image, *buildgate.Analysis, error) {
	img, err := a.image(c)
	if err != nil {
		return nil, nil, err
	}
	if img.Status != buildgate.StatusAnalyzed {
		return nil, nil, notAnalyzed(img)
	}
	an, err := a.cfg.Store.Analysis(c.Request().Context(), img.Digest)
	if err != nil {
		return nil, nil, err
	}
	return img, an, nil
}

func notAnalyzed(img *buildgate.Image) error {
	return buildgate.Errorf(buildgate.ENOTFOUND, "image is not analyzed - analysis_status: %s", analysisStatus(img.Status))
}

// sortedMatches orders matches by severity (highest first), id, package.
func sortedMatches(ms []buildgate.Match) []buildgate.Match {
	out := append([]buildgate.Match(nil), ms...)
	sort.SliceStable(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Severity != y.Severity {
			return x.Severity > y.Severity
		}
		if x.VulnerabilityID != y.VulnerabilityID {
			return x.VulnerabilityID < y.VulnerabilityID
		}
		return x.PackageName < y.PackageName
	})
	return out
}
