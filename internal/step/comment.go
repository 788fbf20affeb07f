package step

import (
	"strings"

	"github.com/buildgate/buildgate/internal/report"
)

// ImageKey names the image without its tag or digest, so that rebuilds of
// one image share a SARIF category and a pull- or merge-request comment:
// the repository of --tag or of a registry reference, else the local
// source as given.
func ImageKey(cfg Config) string {
	s := strings.TrimSpace(cfg.Tag)
	if s == "" {
		s = strings.TrimSpace(cfg.Image)
	}
	if s == "" {
		return strings.TrimSpace(cfg.SBOM)
	}
	if kind, _, ok := strings.Cut(s, ":"); ok {
		switch kind {
		case "docker-archive", "oci-archive", "oci-dir":
			return s
		case "docker":
			s = strings.TrimPrefix(s, "docker:")
		}
	}
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s = s[:i]
	}
	return s
}

// CommentBody is the markdown report with a second hidden marker naming
// the image, so that each image of a pull or merge request keeps its own
// comment; cut to max bytes at a line end, with cutNote saying where the
// rest is.
func CommentBody(markdown, key string, max int, cutNote string) string {
	body := strings.TrimPrefix(markdown, report.MarkdownMarker+"\n")
	head := report.MarkdownMarker + "\n" + ImageMarker(key) + "\n"
	if len(head)+len(body) > max {
		cut := "\n\n… the report is cut here: " + cutNote + "\n"
		n := max - len(head) - len(cut)
		if i := strings.LastIndex(body[:n], "\n"); i > 0 {
			n = i
		}
		body = body[:n] + cut
	}
	return head + body
}

// ImageMarker is the hidden comment naming the image of a comment.
func ImageMarker(key string) string {
	key = strings.NewReplacer("--", "-", ">", "", "\n", " ").Replace(key)
	return "<!-- buildgate-image: " + key + " -->"
}

// IsImageReport reports whether a comment body is the report of the image
// named key.
func IsImageReport(body, key string) bool {
	return strings.HasPrefix(body, report.MarkdownMarker) && strings.Contains(body, ImageMarker(key))
}
