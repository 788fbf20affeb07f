// Package image holds buildgate's domain types: images, their analysis
// status, packages, files, secrets, metadata and vulnerability matches.
//
// It imports only the standard library; every adapter (registry, catalog,
// vulndb, store, server) translates to and from these types.
package buildgate

import (
	"strings"
	"time"
)

// Status is where an image is in its analysis.
type Status string

// Analysis states of an image.
const (
	StatusQueued    Status = "queued"
	StatusAnalyzing Status = "analyzing"
	StatusAnalyzed  Status = "analyzed"
	StatusFailed    Status = "failed"
)

// Terminal reports whether an image in status s is done: analysed or
// failed.
func (s Status) Terminal() bool { return s == StatusAnalyzed || s == StatusFailed }

// Image is one image, identified by its manifest digest, with the tags it
// was submitted under.
type Image struct {
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	// Labels are the Tags that are labels, not bound to the digest by its
	// registry or an admin (see Submission.Label).
	Labels      []string          `json:"labels,omitempty"`
	Status      Status            `json:"status"`
	Error       string            `json:"error,omitempty"`
	Dockerfile  string            `json:"dockerfile,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Source says where the image came from: "registry", "upload",
	// "sbom", "harbor" (a registry pull with the authorization of a
	// Harbor scan request) or "registry-credentials" (a registry pull with
	// the credentials sent with the submission).
	Source     string     `json:"source"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	AnalyzedAt *time.Time `json:"analyzed_at,omitempty"`
}

// Package is one package found in an image.
type Package struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Type     string   `json:"type"` // syft's package type: deb, npm, go-module, ...
	Language string   `json:"language,omitempty"`
	Path     string   `json:"path"` // first location of the package in the image
	Licenses []string `json:"licenses,omitempty"`
	PURL     string   `json:"purl,omitempty"`
	// Origin is the source package (dpkg) or the package's origin, if known.
	Origin string `json:"origin,omitempty"`
	Size   int64  `json:"size,omitempty"`
	// Files are the files the package database says the package owns,
	// with their expected digests (dpkg and rpm packages only; see
	// PackageFile).
	Files []PackageFile `json:"files,omitempty"`
}

// osTypes are the package types that a distro's package manager owns.
var osTypes = map[string]bool{
	"deb": true, "rpm": true, "apk": true, "alpm": true, "portage": true,
	"dpkg": true, "nix": true,
}

// IsOSType reports whether packages of type t belong to the operating system
// (as opposed to language or application packages).
func IsOSType(t string) bool { return osTypes[strings.ToLower(t)] }

// IsOS reports whether p is an operating-system package.
func (p Package) IsOS() bool { return IsOSType(p.Type) }

// FixState is what the vulnerability data says about a fix.
type FixState string

// Fix states, as grype reports them.
const (
	FixStateFixed    FixState = "fixed"
	FixStateNotFixed FixState = "not-fixed"
	FixStateWontFix  FixState = "wont-fix"
	FixStateUnknown  FixState = "unknown"
)

// CVSS is one CVSS score of a vulnerability.
type CVSS struct {
	Version             string  `json:"version"` // "2.0", "3.0", "3.1", "4.0"
	Vector              string  `json:"vector,omitempty"`
	Source              string  `json:"source,omitempty"`
	Type                string  `json:"type,omitempty"` // "Primary" or "Secondary"
	BaseScore           float64 `json:"base_score"`
	ExploitabilityScore float64 `json:"exploitability_score,omitempty"`
	ImpactScore         float64 `json:"impact_score,omitempty"`
}

// Match is one vulnerability affecting one package of an image.
type Match struct {
	VulnerabilityID string   `json:"id"`
	Severity        Severity `json:"severity"`
	Description     string   `json:"description,omitempty"`
	// Namespace and DataSource name the advisory record that matched.
	Namespace  string   `json:"namespace,omitempty"`
	DataSource string   `json:"data_source,omitempty"`
	URLs       []string `json:"urls,omitempty"`
	// RelatedIDs are aliases (a GHSA's CVE, a Debian record's CVE).
	RelatedIDs []string `json:"related_ids,omitempty"`

	PackageID      string `json:"package_id,omitempty"`
	PackageName    string `json:"package_name"`
	PackageVersion string `json:"package_version"`
	PackageType    string `json:"package_type"`
	PackagePath    string `json:"package_path,omitempty"`

	FixState    FixState `json:"fix_state"`
	FixVersions []string `json:"fix_versions,omitempty"`
	// FixedAt is when the first fix became available, if known.
	FixedAt *time.Time `json:"fixed_at,omitempty"`
	// PublishedAt is when the vulnerability was first published, if known.
	PublishedAt *time.Time `json:"published_at,omitempty"`

	CVSS []CVSS `json:"cvss,omitempty"`
	// KEV is true when the vulnerability is in CISA's known-exploited catalog.
	KEV bool `json:"kev"`
	// EPSS is the exploit prediction probability (0..1), if known.
	EPSS *float64 `json:"epss,omitempty"`
	// EPSSPercentile is EPSS's percentile (0..1), if known.
	EPSSPercentile *float64 `json:"epss_percentile,omitempty"`
}

// IsOS reports whether the matched package is an operating-system package.
func (m Match) IsOS() bool { return IsOSType(m.PackageType) }

// File is one regular file, directory or link in the squashed image.
type File struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Mode     uint32 `json:"mode"` // permission and type bits, as os.FileMode
	Type     string `json:"type"` // "file", "dir", "symlink", "hardlink", "other"
	LinkDest string `json:"link_dest,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	// MD5 is the hex MD5 of a regular file's content, to compare with
	// the digests dpkg records (PackageFile).
	MD5  string `json:"md5,omitempty"`
	SUID bool   `json:"suid"`
	SGID bool   `json:"sgid"`
}

// Secret is a place in the image where a secret rule matched. It never
// carries the secret's value.
type Secret struct {
	Rule string `json:"rule"`
	Path string `json:"path"`
	Line int    `json:"line"`
}

// HistoryEntry is one entry of the image config's history.
type HistoryEntry struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}

// Metadata describes an image as a whole.
type Metadata struct {
	// ImageID is the digest of the image's config ("sha256:..."), the id
	// docker shows and Anchore calls imageId.
	ImageID       string            `json:"image_id,omitempty"`
	Distro        string            `json:"distro"`         // os-release ID: "debian"
	DistroVersion string            `json:"distro_version"` // os-release VERSION_ID: "11"
	LikeDistro    []string          `json:"like_distro,omitempty"`
	OS            string            `json:"os"`   // "linux"
	Arch          string            `json:"arch"` // "amd64"
	Size          int64             `json:"size"` // compressed size of layers in bytes
	LayerCount    int               `json:"layer_count"`
	User          string            `json:"user"`
	ExposedPorts  []string          `json:"exposed_ports,omitempty"` // "8080/tcp"
	Env           []string          `json:"env,omitempty"`           // names only, never values
	Labels        map[string]string `json:"labels,omitempty"`
	Entrypoint    []string          `json:"entrypoint,omitempty"`
	Cmd           []string          `json:"cmd,omitempty"`
	WorkingDir    string            `json:"working_dir,omitempty"`
	Created       *time.Time        `json:"created,omitempty"`
	History       []HistoryEntry    `json:"history,omitempty"`
}

// Facts is everything the gate knows about an analysed image: what a
// policy is evaluated against.
type Facts struct {
	Digest     string    `json:"digest"`
	Tags       []string  `json:"tags,omitempty"`
	Dockerfile string    `json:"dockerfile,omitempty"`
	Metadata   Metadata  `json:"metadata"`
	Packages   []Package `json:"packages"`
	Matches    []Match   `json:"matches"`
	Files      []File    `json:"files,omitempty"`
	Secrets    []Secret  `json:"secrets,omitempty"`
	// FileContentMatches are named content rules (files gate
	// content_regex_match) that matched a file: rule name -> paths.
	ContentMatches map[string][]string `json:"content_matches,omitempty"`
}

// DBInfo describes the vulnerability data that matches were made with.
type DBInfo struct {
	SchemaVersion string     `json:"schema_version"`
	Built         time.Time  `json:"built"`
	Providers     []Provider `json:"providers"`
	// Distros are the distro namespaces the DB has records for, as
	// "name:version" ("debian:11"), for the vulnerability_data_unavailable
	// trigger.
	Distros []string `json:"distros,omitempty"`
}

// Provider is one source of vulnerability data in the DB.
type Provider struct {
	Name         string     `json:"name"`
	Version      string     `json:"version,omitempty"`
	Processor    string     `json:"processor,omitempty"`
	DateCaptured *time.Time `json:"date_captured,omitempty"`
	Records      int        `json:"records"`
}

// Analysis is the stored result of analysing an image: its SBOM and the
// facts drawn from it, with the DB its matches were made with.
type Analysis struct {
	Facts
	// SBOM is the syft-json document the analysis made.
	SBOM []byte `json:"-"`
	// PackageList is what the matcher reads from SBOM, kept compactly so
	// that a re-match need not decode the SBOM (nil: none, the re-match
	// decodes the SBOM). Stored with the analysis, not read back with it.
	PackageList []byte `json:"-"`
	// Decoded is SBOM as the cataloger decoded it (a syft *sbom.SBOM),
	// for a matcher that matches it without reading SBOM again; nil when
	// the cataloger kept none. Never stored.
	Decoded any `json:"-"`
	// Finish, when set, completes SBOM, which the cataloger still encodes
	// (and keeps in its cache) when it returns the analysis: it must be
	// called before SBOM is read, and its error fails the analysis. It
	// may be called again. Never stored.
	Finish func() error `json:"-"`
	// Encoded is what the store encoded of the analysis ahead of saving
	// it, all but the matches, while they were matched; nil: the store
	// encodes it all when saving. Never stored.
	Encoded any `json:"-"`
	// DBBuilt is the build time of the vulnerability DB used for Matches.
	DBBuilt   time.Time `json:"db_built"`
	MatchedAt time.Time `json:"matched_at"`
}

// Role is what a token may do.
type Role string

// Roles: admin does everything; ci submits and reads images and
// evaluations; admission only sends admission reviews (the Kubernetes API
// server's token).
const (
	RoleAdmin     Role = "admin"
	RoleCI        Role = "ci"
	RoleAdmission Role = "admission"
)

// DBArchive is a vulnerability DB archive kept in a shared store: the DB
// that one replica imported or updated to, which every replica loads.
type DBArchive struct {
	ID string
	// Generation orders the archives stored: the highest is current.
	Generation int64
	// Built is the DB's build time.
	Built time.Time
	// Checksum is the archive's "sha256:<hex>"; Size its length in bytes.
	Checksum string
	Size     int64
	StoredAt time.Time
}

// ConsoleSession is a signed-in console session as the store keeps it:
// found by the hash of the session id, with the session's API token sealed
// under a key only the session id gives.
type ConsoleSession struct {
	IDHash      string
	SealedToken string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Token is an API token's record; the secret itself is never stored.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// ExpiresAt, when set, is when the token stops being accepted.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// PolicyRecord is a stored policy bundle: its latest version and whether it
// is the active one. Bundle is the bundle's JSON.
type PolicyRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Active    bool      `json:"active"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Bundle    []byte    `json:"-"`
}

// PolicyVersion is one saved version of a policy bundle.
type PolicyVersion struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Bundle    []byte    `json:"-"`
}

// StoredEvaluation is a verdict kept for an image, tag and bundle. Result
// is the evaluation's JSON.
type StoredEvaluation struct {
	Digest        string    `json:"digest"`
	Tag           string    `json:"tag"`
	PolicyID      string    `json:"policy_id"`
	PolicyVersion int       `json:"policy_version"`
	FinalAction   string    `json:"final_action"`
	DBBuilt       time.Time `json:"db_built"`
	EvaluatedAt   time.Time `json:"evaluated_at"`
	// Inputs identifies what the verdict was evaluated from (see
	// analysis.Verdicts); ValidUntil is when time alone may change it
	// (zero: never).
	Inputs     string    `json:"-"`
	ValidUntil time.Time `json:"-"`
	Result     []byte    `json:"-"`
}

// MatchStamp says which matches an analysis holds: the DB they were made
// with and when they were stored.
type MatchStamp struct {
	DBBuilt   time.Time
	MatchedAt time.Time
}
