// Package api holds the wire types of buildgate's /v1 API, shared by the
// server and the Go client. It imports only the standard library.
package api

import (
	"encoding/json"
	"time"
)

// Error codes of ErrorBody.
const (
	CodeInvalid      = "invalid"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeInternal     = "internal"
)

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// SubmitImageRequest is the body of POST /v1/images.
type SubmitImageRequest struct {
	Ref string `json:"ref"`
	// Tag is the repo:tag the image stands for in policy mappings, when
	// it differs from Ref (e.g. a digest reference).
	Tag         string            `json:"tag,omitempty"`
	Dockerfile  string            `json:"dockerfile,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Force       bool              `json:"force,omitempty"`
	// Platform picks the image of an index, "os/architecture[/variant]";
	// empty: linux/amd64.
	Platform string `json:"platform,omitempty"`
	// RegistryAuth, when set, are pull credentials for this submission
	// alone: the gate resolves and pulls the reference with them, sends
	// them to its registry only, and never stores, logs or answers them.
	RegistryAuth *RegistryAuth `json:"registry_auth,omitempty"`
}

// RegistryAuth are registry credentials sent with one submission.
type RegistryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Image statuses.
const (
	StatusQueued    = "queued"
	StatusAnalyzing = "analyzing"
	StatusAnalyzed  = "analyzed"
	StatusFailed    = "failed"
)

// Image is an image record.
type Image struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	// Labels are the tags that only label the image (an upload's or an
	// SBOM's by a ci token): a tag lookup finds them only when no image
	// is bound to the tag by its registry or an admin.
	Labels      []string          `json:"labels,omitempty"`
	Status      string            `json:"status"`
	Error       string            `json:"error,omitempty"`
	Source      string            `json:"source"`
	Dockerfile  bool              `json:"dockerfile_provided"`
	Annotations map[string]string `json:"annotations"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	AnalyzedAt  *time.Time        `json:"analyzed_at,omitempty"`
}

// ImageList is the answer of GET /v1/images.
type ImageList struct {
	Images []Image `json:"images"`
}

// CVSS is one CVSS score.
type CVSS struct {
	Version             string  `json:"version"`
	Vector              string  `json:"vector,omitempty"`
	Source              string  `json:"source,omitempty"`
	Type                string  `json:"type,omitempty"`
	BaseScore           float64 `json:"base_score"`
	ExploitabilityScore float64 `json:"exploitability_score,omitempty"`
	ImpactScore         float64 `json:"impact_score,omitempty"`
}

// Vulnerability is one vulnerability matched to one package.
type Vulnerability struct {
	ID             string     `json:"id"`
	Severity       string     `json:"severity"`
	Description    string     `json:"description,omitempty"`
	PackageName    string     `json:"package_name"`
	PackageVersion string     `json:"package_version"`
	PackageType    string     `json:"package_type"`
	PackagePath    string     `json:"package_path,omitempty"`
	FixState       string     `json:"fix_state"`
	FixVersions    []string   `json:"fix_versions"`
	URLs           []string   `json:"urls"`
	RelatedIDs     []string   `json:"related_ids,omitempty"`
	CVSS           []CVSS     `json:"cvss"`
	KEV            bool       `json:"kev"`
	EPSS           *float64   `json:"epss,omitempty"`
	EPSSPercentile *float64   `json:"epss_percentile,omitempty"`
	DataSource     string     `json:"data_source,omitempty"`
	Namespace      string     `json:"namespace,omitempty"`
	PublishedAt    *time.Time `json:"published_at,omitempty"`
	FixedAt        *time.Time `json:"fixed_at,omitempty"`
}

// VulnerabilityList is the answer of GET /v1/images/{digest}/vulnerabilities.
type VulnerabilityList struct {
	Digest          string          `json:"digest"`
	Type            string          `json:"type"`
	DBBuilt         *time.Time      `json:"db_built,omitempty"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
}

// Package is one package in an image.
type Package struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Type     string   `json:"type"`
	Language string   `json:"language,omitempty"`
	Path     string   `json:"path"`
	Licenses []string `json:"licenses"`
	PURL     string   `json:"purl,omitempty"`
	Origin   string   `json:"origin,omitempty"`
	Size     int64    `json:"size,omitempty"`
}

// PackageList is the answer of GET /v1/images/{digest}/packages.
type PackageList struct {
	Digest   string    `json:"digest"`
	Type     string    `json:"type"`
	Packages []Package `json:"packages"`
}

// HistoryEntry is one entry of an image's history.
type HistoryEntry struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}

// Metadata is the answer of GET /v1/images/{digest}/metadata.
type Metadata struct {
	Digest        string            `json:"digest"`
	Distro        string            `json:"distro"`
	DistroVersion string            `json:"distro_version"`
	LikeDistro    []string          `json:"like_distro,omitempty"`
	OS            string            `json:"os"`
	Arch          string            `json:"arch"`
	Size          int64             `json:"size"`
	LayerCount    int               `json:"layer_count"`
	User          string            `json:"user"`
	ExposedPorts  []string          `json:"exposed_ports"`
	Env           []string          `json:"env"`
	Labels        map[string]string `json:"labels"`
	Entrypoint    []string          `json:"entrypoint,omitempty"`
	Cmd           []string          `json:"cmd,omitempty"`
	WorkingDir    string            `json:"working_dir,omitempty"`
	Created       *time.Time        `json:"created,omitempty"`
	History       []HistoryEntry    `json:"history"`
}

// File is one file of an image.
type File struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Mode     string `json:"mode"` // octal permission bits with setuid/setgid/sticky, "0755", "4755"
	Type     string `json:"type"`
	LinkDest string `json:"link_dest,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	SUID     bool   `json:"suid"`
	SGID     bool   `json:"sgid"`
}

// FileList is the answer of GET /v1/images/{digest}/files.
type FileList struct {
	Digest string `json:"digest"`
	Files  []File `json:"files"`
}

// Secret is where a secret rule matched; never the secret's value.
type Secret struct {
	Rule string `json:"rule"`
	Path string `json:"path"`
	Line int    `json:"line"`
}

// SecretList is the answer of GET /v1/images/{digest}/secrets.
type SecretList struct {
	Digest  string   `json:"digest"`
	Secrets []Secret `json:"secrets"`
}

// DBProvider is one provider of the vulnerability DB.
type DBProvider struct {
	Name         string     `json:"name"`
	Version      string     `json:"version,omitempty"`
	Processor    string     `json:"processor,omitempty"`
	DateCaptured *time.Time `json:"date_captured,omitempty"`
	Records      int        `json:"records"`
}

// DBStatus is the answer of GET /v1/db.
type DBStatus struct {
	Ready             bool         `json:"ready"`
	SchemaVersion     string       `json:"schema_version,omitempty"`
	Built             *time.Time   `json:"built,omitempty"`
	Age               string       `json:"age,omitempty"`
	AgeSeconds        float64      `json:"age_seconds,omitempty"`
	Providers         []DBProvider `json:"providers"`
	LastUpdateAttempt *time.Time   `json:"last_update_attempt,omitempty"`
	LastUpdateError   string       `json:"last_update_error,omitempty"`
	UpdateURL         string       `json:"update_url,omitempty"`
	// Warmed is what the DB in use was warmed with before its swap.
	Warmed *DBWarmed `json:"warmed,omitempty"`
}

// DBWarmed is what an import or update matched in its new DB before the
// swap: Packages of the Held packages (and matchers) the replaced DB had
// matched, in Seconds; Complete is false when the budget cut it.
type DBWarmed struct {
	Packages int     `json:"packages"`
	Held     int     `json:"held"`
	Seconds  float64 `json:"seconds"`
	Complete bool    `json:"complete"`
}

// Policy is a stored policy bundle. Bundle is Anchore's 1_0 bundle JSON.
type Policy struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Active    bool            `json:"active"`
	Version   int             `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Bundle    json.RawMessage `json:"bundle,omitempty"`
}

// PolicyList is the answer of GET /v1/policies.
type PolicyList struct {
	Policies []Policy `json:"policies"`
}

// PolicyVersion is one saved version of a bundle.
type PolicyVersion struct {
	Version   int             `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	Bundle    json.RawMessage `json:"bundle"`
}

// PolicyVersionList is the answer of GET /v1/policies/{id}/versions.
type PolicyVersionList struct {
	ID       string          `json:"id"`
	Versions []PolicyVersion `json:"versions"`
}

// Token is an API token's record, as GET /v1/tokens lists it; the secret is
// never stored, so never shown again after it is created.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// CreateTokenRequest is the body of POST /v1/tokens. ExpiresIn is a Go
// duration ("720h"); empty: the token does not expire.
type CreateTokenRequest struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CreatedToken answers POST /v1/tokens: the record and, this once, the
// secret.
type CreatedToken struct {
	Token
	Secret string `json:"secret"`
}

// Verdict is the answer of GET /v1/images/{digest}/check, in the fields
// clients read; the server answers more (see the OpenAPI document).
type Verdict struct {
	FinalAction   string     `json:"final_action"`
	Reason        string     `json:"reason"`
	BundleID      string     `json:"bundle_id"`
	BundleName    string     `json:"bundle_name"`
	BundleVersion int        `json:"bundle_version"`
	MappingID     string     `json:"mapping_id"`
	Tag           string     `json:"tag"`
	ImageDigest   string     `json:"image_digest"`
	EvaluatedAt   time.Time  `json:"evaluated_at"`
	DBBuilt       *time.Time `json:"db_built,omitempty"`
	Findings      []Finding  `json:"findings"`
}

// Finding is one finding of a Verdict.
type Finding struct {
	TriggerID string `json:"trigger_id"`
	Gate      string `json:"gate"`
	Trigger   string `json:"trigger"`
	Action    string `json:"action"`
	Message   string `json:"message"`
	PolicyID  string `json:"policy_id"`
	RuleID    string `json:"rule_id"`
}
