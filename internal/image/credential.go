package image

import "time"

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
