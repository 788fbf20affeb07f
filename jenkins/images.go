package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// imageEntry is one line of an anchore_images file.
type imageEntry struct {
	Image      string
	Dockerfile string
	Line       int
}

// readImagesFile reads an anchore_images file.
func readImagesFile(path string) ([]imageEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the images file: %w", err)
	}
	defer f.Close()
	entries, err := parseImages(f)
	if err != nil {
		return nil, fmt.Errorf("images file %s: %w", path, err)
	}
	return entries, nil
}

// parseImages reads the Anchore Jenkins plugin's anchore_images format:
// one `IMAGE [DOCKERFILE]` a line, separated by blanks. Blank lines and
// lines starting with # are ignored, as is everything from a word that
// starts with #. A file without any image is an error.
func parseImages(r io.Reader) ([]imageEntry, error) {
	var out []imageEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		switch len(fields) {
		case 0:
			continue
		case 1:
			out = append(out, imageEntry{Image: fields[0], Line: n})
		case 2:
			out = append(out, imageEntry{Image: fields[0], Dockerfile: fields[1], Line: n})
		default:
			return nil, fmt.Errorf("line %d: want IMAGE [DOCKERFILE], got %d words", n, len(fields))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no images in it")
	}
	return out, nil
}

// maxDirName bounds a report directory's name.
const maxDirName = 80

// sanitise turns an image name into a directory name: letters, digits,
// '.', '-' and '_' stay, anything else becomes '_'. A long name is cut and
// ends with a hash of the whole, so different images never share a
// directory.
func sanitise(image string) string {
	var b strings.Builder
	for _, r := range image {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "._")
	if s == "" {
		s = "image"
	}
	if len(s) > maxDirName {
		sum := sha256.Sum256([]byte(image))
		s = s[:maxDirName-13] + "-" + hex.EncodeToString(sum[:])[:12]
	}
	return s
}

// reportDirs names each entry's report directory; an image listed twice
// gets a numbered second directory.
func reportDirs(entries []imageEntry) []string {
	used := map[string]bool{}
	dirs := make([]string, len(entries))
	for i, e := range entries {
		base := sanitise(e.Image)
		d := base
		for n := 2; used[d]; n++ {
			d = fmt.Sprintf("%s-%d", base, n)
		}
		used[d] = true
		dirs[i] = d
	}
	return dirs
}
