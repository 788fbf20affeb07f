package api

import (
	"fmt"
	"log/slog"
	"time"
)

// RegistryRequest is the body of POST /v1/registries and PUT
// /v1/registries/{registry}.
type RegistryRequest struct {
	// Registry is the host, optionally with a path prefix
	// ("gcr.io/my-project").
	Registry string `json:"registry"`
	Username string `json:"username"`
	// Password is the password, token, JSON key (GCR, with username
	// _json_key) or AWS secret access key (awsecr). On PUT, empty keeps the
	// stored one.
	Password string `json:"password"`
	// Type is docker_v2 (the default) or awsecr.
	Type string `json:"type,omitempty"`
	// VerifyTLS defaults to true (on PUT, to the stored value). On PUT
	// every empty field keeps its stored value.
	VerifyTLS *bool  `json:"verify_tls,omitempty"`
	CACert    string `json:"ca_cert,omitempty"`
	Name      string `json:"name,omitempty"`
}

// String describes the request without its password.
func (r RegistryRequest) String() string {
	return fmt.Sprintf("registry %s (type %s, user %q)", r.Registry, r.Type, r.Username)
}

// GoString keeps %#v from printing the password.
func (r RegistryRequest) GoString() string { return "api.RegistryRequest{" + r.String() + "}" }

// LogValue keeps log/slog from printing the password.
func (r RegistryRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("registry", r.Registry), slog.String("type", r.Type), slog.String("username", r.Username))
}

// Registry is a registry record. It never holds the password; it says when
// the password was set.
type Registry struct {
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

// RegistryList is the body of GET /v1/registries.
type RegistryList struct {
	Registries []Registry `json:"registries"`
}
