package catalog

import (
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/anchore/syft/syft/linux"
)

func TestRedactCreatedBy(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "buildkit env", in: "ENV A=1 B=\"two words\"", want: "ENV A=<redacted> B=<redacted>"},
		{name: "classic env", in: "/bin/sh -c #(nop)  ENV TOKEN=abc", want: "/bin/sh -c #(nop)  ENV TOKEN=<redacted>"},
		{name: "legacy env", in: "/bin/sh -c #(nop) ENV TOKEN abc def", want: "/bin/sh -c #(nop) ENV TOKEN <redacted>"},
		{name: "run with args", in: "RUN |2 USER=me PASS=secret /bin/sh -c make", want: "RUN |2 USER=<redacted> PASS=<redacted> /bin/sh -c make"},
		{name: "plain run", in: "RUN /bin/sh -c apt-get update", want: "RUN /bin/sh -c apt-get update"},
		{name: "copy", in: "COPY app/ /app/ # buildkit", want: "COPY app/ /app/ # buildkit"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactCreatedBy(tt.in); got != tt.want {
				t.Errorf("redactCreatedBy(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMetadataFrom(t *testing.T) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	m := &v1.Manifest{Layers: []v1.Descriptor{{Size: 10}, {Size: 32}}}
	cf := &v1.ConfigFile{
		OS: "linux", Architecture: "arm64", Created: v1.Time{Time: created},
		Config: v1.Config{
			Env:          []string{"A=1", "SECRET=x=y", "EMPTY"},
			ExposedPorts: map[string]struct{}{"9000": {}, "22/tcp": {}},
		},
		History: []v1.History{{CreatedBy: "x"}},
	}
	md := metadataFrom(m, cf)
	setDistro(&md, &linux.Release{ID: "debian", VersionID: "12.5", IDLike: []string{"x"}})

	tests := []struct {
		name      string
		got, want any
	}{
		{name: "size", got: md.Size, want: int64(42)},
		{name: "layers", got: md.LayerCount, want: 2},
		{name: "arch", got: md.Arch, want: "arm64"},
		{name: "created", got: *md.Created, want: created},
		{name: "history created", got: md.History[0].Created, want: (*time.Time)(nil)},
		{name: "distro", got: md.Distro + " " + md.DistroVersion, want: "debian 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if want := []string{"A", "SECRET", "EMPTY"}; !slices.Equal(md.Env, want) {
		t.Errorf("env: got %v, want %v", md.Env, want)
	}
	if want := []string{"22/tcp", "9000/tcp"}; !slices.Equal(md.ExposedPorts, want) {
		t.Errorf("ports: got %v, want %v", md.ExposedPorts, want)
	}

	other := metadataFrom(nil, nil)
	setDistro(&other, &linux.Release{ID: "alpine", VersionID: "3.19.1"})
	if other.DistroVersion != "3.19.1" {
		t.Errorf("alpine version: got %q, want 3.19.1", other.DistroVersion)
	}
}
