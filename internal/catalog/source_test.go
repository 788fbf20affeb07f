package catalog

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/anchore/syft/syft/file"
)

// contentsResolver serves one file's contents as stereoscope does: a
// reader at and a seeker that does not write itself out.
type contentsResolver struct {
	file.Resolver
	content string
}

type sectionContents struct{ *io.SectionReader }

func (sectionContents) Close() error { return nil }

func (r contentsResolver) FileContentsByLocation(file.Location) (io.ReadCloser, error) {
	return sectionContents{io.NewSectionReader(strings.NewReader(r.content), 0, int64(len(r.content)))}, nil
}

// TestPooledContents: a file's contents keep the reader-at and seeker
// syft's binary parsers look for, and write out what is left of them.
func TestPooledContents(t *testing.T) {
	content := strings.Repeat("0123456789", 10000) // several buffers
	rc, err := pooledResolver{contentsResolver{content: content}}.FileContentsByLocation(file.Location{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.(sectionReadCloser); !ok {
		t.Fatalf("%T is no longer a reader at and a seeker", rc)
	}
	wt, ok := rc.(io.WriterTo)
	if !ok {
		t.Fatalf("%T does not write itself out", rc)
	}
	head := make([]byte, 7)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := wt.WriteTo(&out)
	if err != nil || n != int64(len(content)-7) || out.String() != content[7:] {
		t.Fatalf("WriteTo wrote %d bytes (%v), want the %d after the ones read", n, err, len(content)-7)
	}
}
