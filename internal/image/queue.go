package image

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
