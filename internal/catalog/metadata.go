package catalog

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/anchore/syft/syft/linux"

	"github.com/buildgate/buildgate"
)

// openLayout returns the one image in the OCI image layout at dir.
func openLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	var imgs []v1.Image
	if err := collectImages(idx, &imgs); err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	if len(imgs) != 1 {
		return nil, fmt.Errorf("reading OCI layout %q: holds %d images, want exactly 1", dir, len(imgs))
	}
	return imgs[0], nil
}

func collectImages(idx v1.ImageIndex, imgs *[]v1.Image) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading index manifest: %w", err)
	}
	for _, desc := range m.Manifests {
		switch {
		case desc.MediaType.IsIndex():
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return fmt.Errorf("reading index %s: %w", desc.Digest, err)
			}
			if err := collectImages(child, imgs); err != nil {
				return err
			}
		case desc.MediaType.IsImage():
			// buildx stores attestations as images of platform unknown/unknown
			if desc.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
				continue
			}
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return fmt.Errorf("reading image %s: %w", desc.Digest, err)
			}
			*imgs = append(*imgs, img)
		}
	}
	return nil
}

// imageMetadata describes an image from its manifest and config file. The
// distro fields are left for the SBOM to fill.
func imageMetadata(img v1.Image) (buildgate.Metadata, error) {
	m, err := img.Manifest()
	if err != nil {
		return buildgate.Metadata{}, fmt.Errorf("reading manifest: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return buildgate.Metadata{}, fmt.Errorf("reading config file: %w", err)
	}
	return metadataFrom(m, cf), nil
}

// metadataFrom describes an image from its manifest (may be nil) and
// config file. Environment variables are reported by name only: their
// values can hold secrets.
func metadataFrom(m *v1.Manifest, cf *v1.ConfigFile) buildgate.Metadata {
	var md buildgate.Metadata
	if m != nil {
		if m.Config.Digest.Hex != "" {
			md.ImageID = m.Config.Digest.String()
		}
		md.LayerCount = len(m.Layers)
		for _, l := range m.Layers {
			md.Size += l.Size
		}
	}
	if cf == nil {
		return md
	}
	md.OS = cf.OS
	md.Arch = cf.Architecture
	if !cf.Created.IsZero() {
		t := cf.Created.UTC()
		md.Created = &t
	}
	c := cf.Config
	md.User = c.User
	md.WorkingDir = c.WorkingDir
	md.Entrypoint = c.Entrypoint
	md.Cmd = c.Cmd
	if len(c.Labels) > 0 {
		md.Labels = maps.Clone(c.Labels)
	}
	for port := range c.ExposedPorts {
		if !strings.Contains(port, "/") {
			port += "/tcp"
		}
		md.ExposedPorts = append(md.ExposedPorts, port)
	}
	sort.Strings(md.ExposedPorts)
	for _, kv := range c.Env {
		name, _, _ := strings.Cut(kv, "=")
		md.Env = append(md.Env, name)
	}
	for _, h := range cf.History {
		e := buildgate.HistoryEntry{CreatedBy: redactCreatedBy(h.CreatedBy), Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.Created.IsZero() {
			t := h.Created.UTC()
			e.Created = &t
		}
		md.History = append(md.History, e)
	}
	return md
}

// setDistro fills the distro fields of md from syft's os-release.
//
// For Debian, syft replaces os-release's VERSION_ID ("11") with the point
// release of /etc/debian_version ("11.11"); the SBOM keeps that, but the
// metadata reports the release as os-release does, as Anchore does and
// as vulnerability namespaces ("debian:11") name it.
func setDistro(md *buildgate.Metadata, r *linux.Release) {
	if r == nil {
		return
	}
	md.Distro = r.ID
	md.DistroVersion = r.VersionID
	if strings.EqualFold(r.ID, "debian") {
		md.DistroVersion, _, _ = strings.Cut(r.VersionID, ".")
	}
	if len(r.IDLike) > 0 {
		md.LikeDistro = append([]string(nil), r.IDLike...)
	}
}

var (
	// historyEnv is an ENV instruction as docker build ("/bin/sh -c #(nop)
	// ENV A=b") and BuildKit ("ENV A=b") record it.
	historyEnv = regexp.MustCompile(`^((?:/bin/sh -c )?(?:#\(nop\)\s*)?)ENV\s+(.*)$`)
	// historyEnvName is a name assigned in an ENV instruction.
	historyEnvName = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_.-]*)=`)
	// historyRunArgs is the build arguments BuildKit records before a RUN
	// command: "RUN |2 A=b C=d /bin/sh -c ...".
	historyRunArgs = regexp.MustCompile(`^RUN \|([0-9]+) `)
)

// redactValue replaces a value taken out of a history entry.
const redactValue = "<redacted>"

// redactCreatedBy removes from a history entry the values it repeats from
// ENV instructions and from BuildKit's build arguments, which, like the
// environment's values, can hold secrets. Names are kept.
func redactCreatedBy(s string) string {
	if m := historyEnv.FindStringSubmatch(s); m != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(m[2]), " ")
		if !strings.Contains(first, "=") { // legacy "ENV NAME value"
			return m[1] + "ENV " + first + " " + redactValue
		}
		var names []string
		for _, n := range historyEnvName.FindAllStringSubmatch(m[2], -1) {
			names = append(names, n[1]+"="+redactValue)
		}
		return m[1] + "ENV " + strings.Join(names, " ")
	}
	if m := historyRunArgs.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return s
		}
		fields := strings.Split(s[len(m[0]):], " ")
		for i := 0; i < n && i < len(fields); i++ {
			if name, _, ok := strings.Cut(fields[i], "="); ok {
				fields[i] = name + "=" + redactValue
			}
		}
		return m[0] + strings.Join(fields, " ")
	}
	return s
}
