package policy

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/buildgate/buildgate"
)

func TestSecretScans(t *testing.T) {
	in := Input{Facts: buildgate.Facts{Secrets: []buildgate.Secret{
		{Rule: "AWS_ACCESS_KEY", Path: "/root/.aws/credentials", Line: 2},
		{Rule: "AWS_ACCESS_KEY", Path: "/root/.aws/credentials", Line: 5},
		{Rule: "PRIV_KEY", Path: "/etc/ssl/private/key.pem", Line: 1},
	}}}
	tests := []struct {
		name   string
		params []Param
		in     Input
		want   []string
	}{
		{"found, every rule", nil, in, []string{
			"Secret content search analyzer found regexp match in container: file=/root/.aws/credentials regexp=AWS_ACCESS_KEY",
			"Secret content search analyzer found regexp match in container: file=/etc/ssl/private/key.pem regexp=PRIV_KEY"}},
		{"one rule", kv("content_regex_name", "priv_key"), in, []string{
			"Secret content search analyzer found regexp match in container: file=/etc/ssl/private/key.pem regexp=PRIV_KEY"}},
		{"filename regex", kv("filename_regex", "/root/.*"), in, []string{
			"Secret content search analyzer found regexp match in container: file=/root/.aws/credentials regexp=AWS_ACCESS_KEY"}},
		{"filename regex anchors at start", kv("filename_regex", "credentials"), in, []string{}},
		{"notfound with matches", kv("match_type", "notfound"), in, []string{}},
		{"notfound without matches", kv("match_type", "notfound", "content_regex_name", "DOCKER_AUTH"), in, []string{
			"Secret content search analyzer did not find regexp match in container: filename_regex=* content_regex_name=DOCKER_AUTH"}},
		{"notfound on a clean image", kv("match_type", "notfound"), Input{}, []string{
			"Secret content search analyzer did not find regexp match in container: filename_regex=* content_regex_name=all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "secret_scans", "content_regex_checks", tt.params, tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func fileInput() Input {
	return Input{Facts: buildgate.Facts{
		Files: []buildgate.File{
			{Path: "/etc/passwd", Mode: 0o644, Type: "file", SHA256: "832cd0f75b227d13aac82b1f70b7f90191a4186c151f9db50851d209c45ede11"},
			{Path: "/usr/bin/passwd", Mode: uint32(fs.ModeSetuid) | 0o755, Type: "file", SUID: true},
			{Path: "/usr/bin/wall", Mode: 0o2755, Type: "file"},
			{Path: "/etc/ssl/private/server.pem", Mode: 0o600, Type: "file"},
			{Path: "/tmp", Mode: uint32(fs.ModeDir|fs.ModeSticky) | 0o777, Type: "dir"},
		},
		ContentMatches: map[string][]string{
			"PASSWORD": {"/app/config.yml", "/app/.env"},
			"TOKEN":    {"/app/.env"},
		},
	}}
}

func TestFiles(t *testing.T) {
	in := fileInput()
	const sum = "832cd0f75b227d13aac82b1f70b7f90191a4186c151f9db50851d209c45ede11"
	tests := []struct {
		name    string
		trigger string
		params  []Param
		want    []string
	}{
		{"content match all", "content_regex_match", nil, []string{
			"File content analyzer found regexp match in container: file=/app/.env regexp=PASSWORD",
			"File content analyzer found regexp match in container: file=/app/config.yml regexp=PASSWORD",
			"File content analyzer found regexp match in container: file=/app/.env regexp=TOKEN"}},
		{"content match named", "content_regex_match", kv("regex_name", "TOKEN"), []string{
			"File content analyzer found regexp match in container: file=/app/.env regexp=TOKEN"}},
		{"name match", "name_match", kv("regex", `.*\.pem`), []string{
			`Application of regex matched file found in container: file=/etc/ssl/private/server.pem regexp=.*\.pem`}},
		{"name match anchors at start", "name_match", kv("regex", `passwd`), []string{}},
		{"checksum equals", "attribute_match", kv("filename", "/etc/passwd", "checksum", sum, "checksum_match", "equals"), []string{
			"filename=/etc/passwd and checksum=" + sum + " op=equals specified_checksum=" + sum}},
		{"checksum not_equals holds not", "attribute_match", kv("filename", "/etc/passwd", "checksum", sum, "checksum_match", "not_equals"), []string{}},
		{"mode equals", "attribute_match", kv("filename", "/etc/passwd", "mode", "0644"), []string{
			"filename=/etc/passwd and mode=0o644 op=equals specified_mode=0o644"}},
		{"mode not_equals", "attribute_match", kv("filename", "/etc/passwd", "mode", "00600", "mode_op", "not_equals"), []string{
			"filename=/etc/passwd and mode=0o644 op=not_equals specified_mode=0o600"}},
		{"mode >= with setuid", "attribute_match", kv("filename", "/usr/bin/passwd", "mode", "4000", "mode_op", ">="), []string{
			"filename=/usr/bin/passwd and mode=0o4755 op=>= specified_mode=0o4000"}},
		{"checksum and mode must both hold", "attribute_match", kv("filename", "/etc/passwd", "checksum", sum, "mode", "0600"), []string{}},
		{"no attribute given", "attribute_match", kv("filename", "/etc/passwd"), []string{}},
		{"missing skipped by default", "attribute_match", kv("filename", "/etc/shadow", "mode", "0600"), []string{}},
		{"missing fires with skip_missing=false", "attribute_match", kv("filename", "/etc/shadow", "skip_missing", "false"), []string{
			"filename=/etc/shadow and skip_missing=False"}},
		{"suid and sgid", "suid_or_guid_set", nil, []string{
			"SUID or SGID found set on file /usr/bin/passwd. Mode: 0o104755",
			"SUID or SGID found set on file /usr/bin/wall. Mode: 0o102755"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "files", tt.trigger, tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1024", 1024, true},
		{"100MB", 100e6, true},
		{"100mb", 100e6, true},
		{"1.5GB", 1.5e9, true},
		{"1G", 1e9, true},
		{"512KB", 512e3, true},
		{"1KiB", 1024, true},
		{"2MiB", 2 << 20, true},
		{"1 TB", 1e12, true},
		{"10B", 10, true},
		{"MB", 0, false},
		{"1iB", 0, false},
		{"-1MB", 0, false},
		{"1XB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseSize(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestMetadataAttribute(t *testing.T) {
	in := Input{Facts: buildgate.Facts{Metadata: buildgate.Metadata{
		Distro: "debian", DistroVersion: "12", LikeDistro: []string{"debian-like", "linux"},
		OS: "linux", Arch: "amd64", Size: 150_000_000, LayerCount: 7,
	}}}
	msg := func(attr, check, value, img string) string {
		return "Attribute check for attribute: '" + attr + "' check: '" + check + "' check_value: '" + value + "' matched image value: '" + img + "'"
	}
	tests := []struct {
		name   string
		params []Param
		want   []string
	}{
		{"size > 100MB", kv("attribute", "size", "check", ">", "value", "100MB"), []string{msg("size", ">", "100MB", "150000000")}},
		{"size > 150MB boundary", kv("attribute", "size", "check", ">", "value", "150MB"), []string{}},
		{"size >= 150MB boundary", kv("attribute", "size", "check", ">=", "value", "150MB"), []string{msg("size", ">=", "150MB", "150000000")}},
		{"size < 1GiB", kv("attribute", "size", "check", "<", "value", "1GiB"), []string{msg("size", "<", "1GiB", "150000000")}},
		{"size in", kv("attribute", "size", "check", "in", "value", "1, 150MB"), []string{msg("size", "in", "1, 150MB", "150000000")}},
		{"layer_count <=", kv("attribute", "layer_count", "check", "<=", "value", "6"), []string{}},
		{"layer_count >", kv("attribute", "layer_count", "check", ">", "value", "6"), []string{msg("layer_count", ">", "6", "7")}},
		{"architecture =", kv("attribute", "architecture", "check", "=", "value", "amd64"), []string{msg("architecture", "=", "amd64", "amd64")}},
		{"architecture !=", kv("attribute", "architecture", "check", "!=", "value", "arm64"), []string{msg("architecture", "!=", "arm64", "amd64")}},
		{"os_type not_in", kv("attribute", "os_type", "check", "not_in", "value", "windows,darwin"), []string{msg("os_type", "not_in", "windows,darwin", "linux")}},
		{"distro like", kv("attribute", "distro", "check", "like", "value", "deb.*"), []string{msg("distro", "like", "deb.*", "debian")}},
		{"distro not_like", kv("attribute", "distro", "check", "not_like", "value", "deb.*"), []string{}},
		{"distro_version orders as a version", kv("attribute", "distro_version", "check", "<", "value", "9"), []string{}},
		{"distro_version >=", kv("attribute", "distro_version", "check", ">=", "value", "11"), []string{msg("distro_version", ">=", "11", "12")}},
		{"like_distro any", kv("attribute", "like_distro", "check", "=", "value", "linux"), []string{msg("like_distro", "=", "linux", "debian-like linux")}},
		{"like_distro not_in none", kv("attribute", "like_distro", "check", "not_in", "value", "linux"), []string{}},
		{"exists", kv("attribute", "distro", "check", "exists"), []string{msg("distro", "exists", "", "debian")}},
		{"not_exists", kv("attribute", "distro", "check", "not_exists"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messages(fire(t, "metadata", "attribute", tt.params, in)); !slices.Equal(got, tt.want) {
				t.Errorf("messages = %q, want %q", got, tt.want)
			}
		})
	}
	empty := Input{}
	if got := fire(t, "metadata", "attribute", kv("attribute", "layer_count", "check", "not_exists"), empty); len(got) != 1 {
		t.Errorf("layer_count 0 should not exist: %q", messages(got))
	}
}

func TestAlways(t *testing.T) {
	fs := fire(t, "always", "always", nil, Input{})
	if len(fs) != 1 || fs[0].TriggerID != "always" || fs[0].Message != "Unconditional trigger match" || fs[0].Action != ActionStop {
		t.Fatalf("findings = %+v", fs)
	}
}
