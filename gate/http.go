package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/buildgate/buildgate/internal/server"
)

// HTTPConfig is the part of gate serve's configuration that bounds what a
// client may send and how long it may take: body limits per route, a cap
// on concurrent uploads and the HTTP server's timeouts.
type HTTPConfig struct {
	// MaxBodySize bounds every body but uploads, SBOMs and DB imports
	// (JSON and YAML documents, a Dockerfile in POST /v1/images included).
	MaxBodySize     int64
	MaxUploadSize   int64
	MaxSBOMSize     int64
	MaxDBImportSize int64
	// MaxConcurrentUploads caps uploads, SBOMs and DB imports in progress.
	MaxConcurrentUploads int
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout are the HTTP server's;
	// UploadTimeout replaces ReadTimeout for the three upload routes.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	UploadTimeout     time.Duration
	IdleTimeout       time.Duration
	// AnchoreBasicChallenge adds a Basic challenge to the 401s sent to the
	// Anchore Jenkins plugin's HTTP client (see server.Challenge).
	AnchoreBasicChallenge bool
}

func defaultHTTPConfig() HTTPConfig {
	l := server.DefaultLimits()
	return HTTPConfig{
		MaxBodySize: l.Body, MaxUploadSize: l.Upload, MaxSBOMSize: l.SBOM, MaxDBImportSize: l.DBImport,
		MaxConcurrentUploads: l.ConcurrentUploads,
		ReadHeaderTimeout:    10 * time.Second, ReadTimeout: 2 * time.Minute, UploadTimeout: l.UploadTimeout,
		IdleTimeout: 2 * time.Minute,
	}
}

func (c *HTTPConfig) flags(fs *flag.FlagSet) {
	d := defaultHTTPConfig()
	fs.Int64Var(&c.MaxBodySize, "max-body-size", d.MaxBodySize, "largest request body in bytes, but for uploads, SBOMs and DB imports")
	fs.Int64Var(&c.MaxUploadSize, "max-upload-size", d.MaxUploadSize, "largest image archive POST /v1/images/upload takes, in bytes")
	fs.Int64Var(&c.MaxSBOMSize, "max-sbom-size", d.MaxSBOMSize, "largest SBOM POST /v1/sboms takes, in bytes")
	fs.Int64Var(&c.MaxDBImportSize, "max-db-import-size", d.MaxDBImportSize, "largest archive POST /v1/db/import takes, in bytes")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", d.MaxConcurrentUploads, "uploads, SBOMs and DB imports in progress at once; more are answered 429")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "time a client has to send a request's headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", d.ReadTimeout, "time a client has to send a whole request, but for uploads")
	fs.DurationVar(&c.UploadTimeout, "upload-timeout", d.UploadTimeout, "time a client has to send an upload, an SBOM or a DB import")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", d.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.BoolVar(&c.AnchoreBasicChallenge, "anchore-basic-challenge", false, "challenge the Anchore Jenkins plugin's HTTP client with Basic on 401 (never a browser)")
}

// validate refuses limits that would refuse everything or nothing.
func (c HTTPConfig) validate() error {
	for _, l := range []struct {
		flag string
		v    int64
	}{{"--max-body-size", c.MaxBodySize}, {"--max-upload-size", c.MaxUploadSize}, {"--max-sbom-size", c.MaxSBOMSize}, {"--max-db-import-size", c.MaxDBImportSize}} {
		if l.v <= 0 {
			return fmt.Errorf("invalid %s %d: want a size in bytes above 0", l.flag, l.v)
		}
	}
	if c.MaxConcurrentUploads <= 0 {
		return fmt.Errorf("invalid --max-concurrent-uploads %d: want 1 or more", c.MaxConcurrentUploads)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", c.ReadHeaderTimeout}, {"--read-timeout", c.ReadTimeout}, {"--upload-timeout", c.UploadTimeout}, {"--idle-timeout", c.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("invalid %s %s: want a duration above 0", d.flag, d.v)
		}
	}
	return nil
}

func (c HTTPConfig) limits() server.Limits {
	return server.Limits{
		Body: c.MaxBodySize, Upload: c.MaxUploadSize, SBOM: c.MaxSBOMSize, DBImport: c.MaxDBImportSize,
		ConcurrentUploads: c.MaxConcurrentUploads, UploadTimeout: c.UploadTimeout,
	}
}
