package buildgate

// Submission is a request to analyse an image, as the queue records it.
type Submission struct {
	Digest string
	Tag    string // normalised full tag; empty for a digest reference
	// Label records Tag as a label: a tag no registry showed on this
	// digest (an upload's or an SBOM's, or one a user named), which tag
	// lookups use only when no image is bound to the tag.
	Label       bool
	PullRef     string // repository@digest to pull; empty for uploads
	IndexDigest string
	Source      string // "registry", "upload" or "sbom"
	Dockerfile  string
	Annotations map[string]string
	// Force re-analyses an image already analysed.
	Force bool
}

// Job is an analysis claimed from the queue by a worker.
type Job struct {
	Digest   string
	PullRef  string
	Source   string
	Attempts int
}

// SubmitRequest is an image reference submitted for analysis.
type SubmitRequest struct {
	Ref string
	// Tag, when set, is the repo:tag recorded for the image instead of
	// the one Ref names. It is bound to the digest only when its registry
	// serves that digest, or when BindTag; otherwise it is a label.
	Tag         string
	Dockerfile  string
	Annotations map[string]string
	Force       bool
	// BindTag binds Tag without asking its registry (an admin's request).
	BindTag bool
	// Platform picks the image of an index, "os/architecture[/variant]";
	// empty: linux/amd64.
	Platform string
}

// Resolved is a reference resolved at submit time.
type Resolved struct {
	Digest      string
	IndexDigest string
	// PullRef is "repository@digest".
	PullRef string
	// Tag is the normalised full tag, empty for a digest reference.
	Tag string
	// Registry is PullRef's registry, "host[:port]".
	Registry string
}
