package anchore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/server"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestTopLevelKeys(t *testing.T) {
	long := strings.Repeat("x", 3*maxPeek)
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"object", `{"tag": "x:1", "dockerfile": "RlJPTQ==", "annotations": {"a": "b"}}`, []string{"annotations", "dockerfile", "tag"}},
		{"nested keys are not top-level", `{"ref": "x", "annotations": {"tag": "y"}, "list": [{"policyId": 1}]}`, []string{"annotations", "list", "ref"}},
		{"keys past the limit are not seen", `{"a": "` + long + `", "policyId": "p"}`, []string{"a"}},
		{"a long first value still names its key", `{"policybundle": {"x": "` + long + `"}}`, []string{"policybundle"}},
		{"not an object", `["tag"]`, nil},
		{"YAML", "tag: x\nref: y\n", nil},
		{"empty", ``, nil},
		{"cut short", `{"tag": "x", "ref`, []string{"tag"}},
		{"garbage after a key", `{"tag" x}`, []string{"tag"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: strings.NewReader(tt.body)}
			keys, replay := topLevelKeys(cr, maxPeek)
			if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, tt.want) {
				t.Errorf("keys = %v, want %v", got, tt.want)
			}
			if cr.n > maxPeek {
				t.Errorf("read %d bytes, more than the %d allowed", cr.n, maxPeek)
			}
			if b, _ := io.ReadAll(replay); string(b) != tt.body {
				t.Errorf("replayed %d bytes, want the body's %d intact", len(b), len(tt.body))
			}
		})
	}
}

// FuzzTopLevelKeys checks the dispatcher's classifier on any body: it never
// reads past its limit, the body replays intact, and on a small valid JSON
// object it sees exactly the keys a full decode sees.
func FuzzTopLevelKeys(f *testing.F) {
	for _, s := range []string{
		`{"tag": "x:1"}`, `{"ref": "r", "tag": "t"}`, `{"policyId": "p", "policybundle": {"a": [1, {"b": null}]}}`,
		`[]`, `{`, `}`, `{"a":}`, `"str"`, `{"a": 1}{"b": 2}`, "{\"\\ud800\": 1}", `{"a": [[[[[]]]]], "b": true}`,
	} {
		f.Add([]byte(s))
	}
	const limit = 512
	f.Fuzz(func(t *testing.T, body []byte) {
		cr := &countingReader{r: bytes.NewReader(body)}
		keys, replay := topLevelKeys(cr, limit)
		if cr.n > limit {
			t.Fatalf("read %d bytes past the limit of %d", cr.n, limit)
		}
		got, err := io.ReadAll(replay)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("replay = %q, %v; want the body %q", got, err, body)
		}
		var obj map[string]json.RawMessage
		if len(body) < limit && json.Unmarshal(body, &obj) == nil && obj != nil {
			if want := slices.Sorted(maps.Keys(obj)); !slices.Equal(slices.Sorted(maps.Keys(keys)), want) {
				t.Fatalf("keys of %q = %v, want %v", body, slices.Sorted(maps.Keys(keys)), want)
			}
		}
	})
}

// tokens knows one ci token; any other store call panics.
type tokens struct{ Store }

func (tokens) TokenByHash(_ context.Context, hash string) (*buildgate.Token, error) {
	if hash == server.HashToken("ci-token") {
		return &buildgate.Token{Name: "ci", Role: buildgate.RoleCI}, nil
	}
	return nil, buildgate.Errorf(buildgate.EUNAUTHORIZED, "unknown token")
}

// TestNoBodyReadBeforeAuth sends large POSTs that both APIs route, with no
// or a wrong credential: each is answered 401 with none of its body read.
// With a valid token the dispatcher reads at most maxPeek bytes and the
// handler gets the whole body.
func TestNoBodyReadBeforeAuth(t *testing.T) {
	e := echo.New()
	read := 0
	v1 := e.Group("/v1", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") != "Bearer ci-token" {
				return c.String(http.StatusUnauthorized, "no")
			}
			return next(c)
		}
	})
	v1.POST("/images", func(c echo.Context) error {
		b, _ := io.ReadAll(c.Request().Body)
		read = len(b)
		return c.String(http.StatusOK, "ours")
	})
	Route(e, Config{Store: tokens{}})
	const size = 16 << 20
	// An Anchore-shaped body whose distinguishing key comes after the peek.
	body := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"ref": "x", "pad": "`), io.LimitReader(zeros{}, size), strings.NewReader(`", "tag": "t"}`))
	}
	tests := []struct {
		name, auth string
		status     int
		maxRead    int64
	}{
		{"no credential", "", 401, 0},
		{"unknown bearer token", "Bearer nope", 401, 0},
		{"unknown basic user", "Basic " + base64.StdEncoding.EncodeToString([]byte("nope:")), 401, 0},
		{"malformed header", "Bearer", 401, 0},
		{"valid token", "Bearer ci-token", 200, size + 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read = 0
			cr := &countingReader{r: body()}
			req := httptest.NewRequest(http.MethodPost, "/v1/images", cr)
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.status || cr.n > tt.maxRead {
				t.Fatalf("= %d after reading %d bytes, want %d after at most %d", rec.Code, cr.n, tt.status, tt.maxRead)
			}
			if tt.status == 200 && int64(read) != cr.n {
				t.Errorf("the handler read %d of the %d bytes sent", read, cr.n)
			}
			t.Logf("%s: %d, %d bytes of the body read", tt.name, rec.Code, cr.n)
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
