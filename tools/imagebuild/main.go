// Command imagebuild assembles buildgate's container images without Docker,
// with go-containerregistry: `make image` cross-builds static binaries into
// dist/bin/<os>_<arch>/ and runs it.
//
// Each image is one layer on an empty base: the binaries in /usr/local/bin,
// the build machine's CA bundle, /etc/passwd and /etc/group with the
// nonroot user 65532 it runs as, and (for the gate) /data owned by that
// user as its volume. Every timestamp is SOURCE_DATE_EPOCH, so one commit
// always makes the same digests. For each image it writes
//
//	dist/NAME.oci/          an OCI layout holding the multi-arch index (crane push)
//	dist/NAME.docker.tar    the linux/amd64 image as a docker-archive tarball (docker load)
//	dist/NAME.sbom.spdx.json, dist/NAME.sbom.syft.json
//	                        the linux/amd64 image's SBOM, made by the gate's own cataloger
//	dist/NAME.digest        the index digest
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	// syft reads RPM databases through a database/sql driver named
	// "sqlite" (see internal/catalog).
	_ "github.com/glebarez/go-sqlite"

	"github.com/buildgate/buildgate/internal/catalog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

// options are imagebuild's flags.
type options struct {
	bin, out, repo, version, revision, source, ca, platforms string
	epoch                                                    int64
	sbom                                                     bool
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "dist/bin", "`dir` holding <os>_<arch>/<binary>")
	fs.StringVar(&o.out, "out", "dist", "output `dir`")
	fs.StringVar(&o.repo, "repo", "ghcr.io/buildgate", "repository prefix of the docker-archive tags")
	fs.StringVar(&o.version, "version", "dev", "image version (the git tag): label and tag")
	fs.StringVar(&o.revision, "revision", "", "git commit: label")
	fs.StringVar(&o.source, "source", "https://github.com/buildgate/buildgate", "source repository: label")
	fs.StringVar(&o.ca, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle `file` to copy into the images (Debian's ca-certificates)")
	fs.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms of the index; the first is the docker-archive's")
	fs.Int64Var(&o.epoch, "epoch", envEpoch(), "every timestamp, in Unix seconds (default $SOURCE_DATE_EPOCH)")
	fs.BoolVar(&o.sbom, "sbom", true, "write an SBOM of each image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.epoch < 0 {
		return fmt.Errorf("no timestamp: set -epoch or SOURCE_DATE_EPOCH to the commit time (git log -1 --format=%%ct)")
	}
	b, err := newBuild(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", o.out, err)
	}
	for _, s := range images {
		if err := b.write(ctx, s, o); err != nil {
			return err
		}
	}
	return nil
}

// envEpoch reads SOURCE_DATE_EPOCH; -1 when it is unset or not a number.
func envEpoch() int64 {
	n, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func newBuild(o options) (build, error) {
	ca, err := os.ReadFile(o.ca)
	if err != nil {
		return build{}, fmt.Errorf("reading the CA bundle: %w (install Debian's ca-certificates or pass -ca)", err)
	}
	created := time.Unix(o.epoch, 0).UTC()
	b := build{
		bin: o.bin, caCerts: ca, created: created,
		labels: map[string]string{
			"org.opencontainers.image.source":   o.source,
			"org.opencontainers.image.version":  o.version,
			"org.opencontainers.image.revision": o.revision,
			"org.opencontainers.image.licenses": "Apache-2.0",
			"org.opencontainers.image.created":  created.Format(time.RFC3339),
		},
	}
	for _, ps := range strings.Split(o.platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(ps))
		if err != nil || p.OS == "" || p.Architecture == "" {
			return build{}, fmt.Errorf("platform %q: want os/arch, e.g. linux/arm64", ps)
		}
		b.platforms = append(b.platforms, *p)
	}
	return b, nil
}

// write builds s and writes its layout, docker archive, SBOMs and digest.
func (b build) write(ctx context.Context, s spec, o options) error {
	idx, imgs, err := b.index(s)
	if err != nil {
		return err
	}
	dir := filepath.Join(o.out, s.name+".oci")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the old %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.version})); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("computing the digest of %s: %w", s.name, err)
	}
	if err := os.WriteFile(filepath.Join(o.out, s.name+".digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing the digest of %s: %w", s.name, err)
	}

	tag, err := name.NewTag(o.repo + "/" + s.name + ":" + o.version)
	if err != nil {
		return fmt.Errorf("tag of %s: %w", s.name, err)
	}
	tarPath := filepath.Join(o.out, s.name+".docker.tar")
	if err := tarball.WriteToFile(tarPath, tag, imgs[0]); err != nil {
		return fmt.Errorf("writing %s: %w", tarPath, err)
	}
	fmt.Printf("%s %s (%s in %s)\n", s.name, digest, tag, tarPath)
	if !o.sbom {
		return nil
	}
	return b.writeSBOM(ctx, s, imgs[0], o)
}

// writeSBOM catalogs img as the gate catalogs a submitted image.
func (b build) writeSBOM(ctx context.Context, s spec, img v1.Image, o options) error {
	tmp, err := os.MkdirTemp("", "imagebuild-sbom-")
	if err != nil {
		return fmt.Errorf("making a work dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing %s for cataloging: %w", s.name, err)
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("writing %s for cataloging: %w", s.name, err)
	}
	cfg := catalog.DefaultConfig()
	cfg.Name = o.repo + "/" + s.name + ":" + o.version
	res, err := catalog.Catalog(ctx, tmp, cfg)
	if err != nil {
		return fmt.Errorf("cataloging %s: %w", s.name, err)
	}
	spdx, err := catalog.ConvertSBOM(res.SBOM, catalog.FormatSPDXJSON)
	if err != nil {
		return fmt.Errorf("SBOM of %s: %w", s.name, err)
	}
	for suffix, data := range map[string][]byte{".sbom.syft.json": res.SBOM, ".sbom.spdx.json": spdx} {
		if err := os.WriteFile(filepath.Join(o.out, s.name+suffix), data, 0o644); err != nil {
			return fmt.Errorf("writing the SBOM of %s: %w", s.name, err)
		}
	}
	fmt.Printf("%s SBOM: %d packages\n", s.name, len(res.Packages))
	return nil
}
