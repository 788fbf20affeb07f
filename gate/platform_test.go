package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
)

// TestPlatform pushes an index of a linux/amd64 and a linux/arm64 image
// to an in-process registry: a submission takes the amd64 one by default
// and the arm64 one with platform linux/arm64; a platform the index lacks
// and one that does not parse are refused with the reason.
func TestPlatform(t *testing.T) {
	g := startGate(t, nil)
	host := testRegistry(t)
	ref := host + "/multi/app:1"
	digests := map[string]string{}
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, arch := range []string{"amd64", "arm64"} {
		img := randomImage(t)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[arch] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ platform, want string }{{"", "amd64"}, {"linux/arm64", "arm64"}, {"linux/amd64", "amd64"}} {
		img, err := g.c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref, Platform: tc.platform})
		if err != nil {
			t.Fatalf("platform %q: %v", tc.platform, err)
		}
		if img.Digest != digests[tc.want] {
			t.Errorf("platform %q: digest %s, want the %s image %s", tc.platform, img.Digest, tc.want, digests[tc.want])
		}
		done, err := g.c.WaitAnalyzed(ctx, img.Digest, time.Minute, nil)
		if err != nil || done.Status != api.StatusAnalyzed {
			t.Fatalf("platform %q: %v %+v", tc.platform, err, done)
		}
	}
	for _, tc := range []struct{ platform, want string }{
		{"linux/s390x", "is an index with no linux/s390x image (platforms: linux/amd64, linux/arm64)"},
		{"arm64", `invalid platform "arm64": want os/architecture[/variant]`},
	} {
		_, err := g.c.SubmitImage(ctx, api.SubmitImageRequest{Ref: ref, Platform: tc.platform})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("platform %q: %v, want 400 saying %q", tc.platform, err, tc.want)
		}
	}
}
