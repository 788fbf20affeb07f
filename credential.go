package buildgate

import (
	"strings"
	"time"
)

// Registry credential types.
const (
	// RegistryTypeDockerV2 covers Docker Hub, GitLab, Quay robots, ACR and
	// any distribution-compatible registry (and GCR with _json_key).
	RegistryTypeDockerV2 = "docker_v2"
	// RegistryTypeAWSECR mints ECR tokens from access keys (or the
	// default AWS credential chain with username "awsauto").
	RegistryTypeAWSECR = "awsecr"
)

// RegistryCredential is a registry's stored credentials, without the
// secret: responses say only when it was set.
type RegistryCredential struct {
	// Registry is the host, optionally with a path prefix
	// ("gcr.io/my-project"); the longest matching prefix wins.
	Registry      string    `json:"registry"`
	Name          string    `json:"name"`
	Username      string    `json:"username"`
	Type          string    `json:"type"`
	VerifyTLS     bool      `json:"verify_tls"`
	CACert        string    `json:"ca_cert,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	PasswordSetAt time.Time `json:"password_set_at"`
}

// Usernames with a meaning of their own.
const (
	// RegistryUserGCRJSONKey is GCR's and Artifact Registry's username for
	// a service account key, whose JSON, whole, is the password.
	RegistryUserGCRJSONKey = "_json_key"
	// RegistryUserGCRJSONKeyBase64 takes the key's JSON in base64.
	RegistryUserGCRJSONKeyBase64 = "_json_key_base64"
	// RegistryUserECRAuto makes an awsecr record use the default AWS
	// credential chain instead of stored access keys.
	RegistryUserECRAuto = "awsauto"
)

// DockerHub is the name the gate stores Docker Hub's credentials under.
const DockerHub = "docker.io"

// CanonicalRegistry returns the name a registry's records are kept under:
// Docker Hub's aliases (docker.io, index.docker.io, registry-1.docker.io)
// become docker.io, with any path prefix kept; hosts are lower-cased.
func CanonicalRegistry(registry string) string {
	host, path, hasPath := strings.Cut(registry, "/")
	host = strings.ToLower(host)
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host = DockerHub
	}
	if hasPath {
		return host + "/" + path
	}
	return host
}
