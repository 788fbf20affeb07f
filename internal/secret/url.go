package secret

import (
	"net/url"
	"sort"
	"strings"
)

// URLSecrets returns the parts of rawURL that may be credentials: the user
// name and password of its userinfo and every query value, each as written
// and decoded, longest first, for Redact.
func URLSecrets(rawURL string) []string {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return []string{rawURL}
	}
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	if u.User != nil {
		add(u.User.Username())
		p, _ := u.User.Password()
		add(p)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// RedactURL returns rawURL for display: its userinfo and every query value
// replaced by "[REDACTED]", scheme, host, path and query keys kept. A URL
// that does not parse is redacted whole.
func RedactURL(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return redacted
	}
	user := ""
	if u.User != nil {
		user = redacted + "@"
		u.User = nil
	}
	query := ""
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			for range q[k] {
				parts = append(parts, url.QueryEscape(k)+"="+redacted)
			}
		}
		query = "?" + strings.Join(parts, "&")
		u.RawQuery = ""
	}
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	if user != "" {
		if scheme, rest, ok := strings.Cut(s, "://"); ok {
			s = scheme + "://" + user + rest
		}
	}
	return s + query
}

// Redacted is what redaction puts in place of a secret.
const Redacted = redacted
