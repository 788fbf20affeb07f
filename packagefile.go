package buildgate

// Digest algorithms a PackageFile's Digest may be in.
const (
	DigestMD5    = "md5"    // dpkg's md5sums and conffiles; old rpm
	DigestSHA1   = "sha1"   // some rpm databases
	DigestSHA256 = "sha256" // current rpm
)

// PackageFile is one file a package database lists for a package, with
// the digest of the content it installed: what the packages gate's verify
// trigger checks the image's files against.
type PackageFile struct {
	// Path is the absolute path the database records, before any
	// symbolic link in the image (a merged /usr's /bin -> usr/bin) is
	// followed.
	Path string `json:"path"`
	// Digest is the lower-case hex digest of the installed content; empty
	// when the database records none (directories, links, dpkg conffiles
	// listed without one).
	Digest string `json:"digest,omitempty"`
	// Algorithm is Digest's algorithm: DigestMD5, DigestSHA1, DigestSHA256
	// or another name the database uses; empty when Digest is.
	Algorithm string `json:"algorithm,omitempty"`
	// IsConfig marks configuration files (dpkg conffiles, rpm %config),
	// which the administrator is expected to change.
	IsConfig bool `json:"is_config,omitempty"`
}
