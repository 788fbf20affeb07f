package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGitHub is the part of GitHub's REST API the action calls (issue
// comments), under /api/v3 as on GitHub Enterprise Server, in process. It
// records every request.
type fakeGitHub struct {
	// API is the base URL, for $GITHUB_API_URL.
	API string

	token string

	mu       sync.Mutex
	comments map[string][]*fakeComment // by owner/repo#number
	nextID   int64
	requests []string
	// forbid answers 403 to every write, as GitHub does to a fork's token.
	forbid bool
}

type fakeComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

var (
	listOrCreateRE = regexp.MustCompile(`^/api/v3/repos/([^/]+/[^/]+)/issues/(\d+)/comments$`)
	updateRE       = regexp.MustCompile(`^/api/v3/repos/([^/]+/[^/]+)/issues/comments/(\d+)$`)
)

func newFakeGitHub(t *testing.T, token string) *fakeGitHub {
	f := &fakeGitHub{token: token, comments: map[string][]*fakeComment{}, nextID: 1000}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.API = srv.URL + "/api/v3"
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		fail(http.StatusUnauthorized, "Bad credentials")
		return
	}
	if f.forbid && r.Method != http.MethodGet {
		fail(http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	var in struct {
		Body string `json:"body"`
	}
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == "" {
			fail(http.StatusUnprocessableEntity, "body is missing")
			return
		}
	}
	if m := listOrCreateRE.FindStringSubmatch(r.URL.Path); m != nil {
		key := m[1] + "#" + m[2]
		switch r.Method {
		case http.MethodGet:
			perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
			if perPage <= 0 {
				perPage = 30
			}
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			page = max(page, 1)
			all := f.comments[key]
			from, to := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
			if to < len(all) {
				w.Header().Set("Link", fmt.Sprintf(`<%s?per_page=%d&page=%d>; rel="next"`, r.URL.Path, perPage, page+1))
			}
			json.NewEncoder(w).Encode(all[from:to])
		case http.MethodPost:
			c := &fakeComment{ID: f.nextID, Body: in.Body}
			c.User.Login = "github-actions[bot]"
			f.nextID++
			f.comments[key] = append(f.comments[key], c)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(c)
		default:
			fail(http.StatusMethodNotAllowed, "method not allowed")
		}
		return
	}
	if m := updateRE.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPatch {
		id, _ := strconv.ParseInt(m[2], 10, 64)
		for k, cs := range f.comments {
			if !strings.HasPrefix(k, m[1]+"#") {
				continue
			}
			for _, c := range cs {
				if c.ID == id {
					if c.User.Login != "github-actions[bot]" {
						fail(http.StatusForbidden, "You cannot edit this comment")
						return
					}
					c.Body = in.Body
					json.NewEncoder(w).Encode(c)
					return
				}
			}
		}
		fail(http.StatusNotFound, "Not Found")
		return
	}
	fail(http.StatusNotFound, "Not Found")
}

// add puts a comment by someone else on a pull request.
func (f *fakeGitHub) add(repoPR, user, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeComment{ID: f.nextID, Body: body}
	c.User.Login = user
	f.nextID++
	f.comments[repoPR] = append(f.comments[repoPR], c)
}

// Comments returns a pull request's comments ("owner/repo#12").
func (f *fakeGitHub) Comments(repoPR string) []fakeComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeComment
	for _, c := range f.comments[repoPR] {
		out = append(out, *c)
	}
	return out
}

// Requests returns the requests so far and forgets them.
func (f *fakeGitHub) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeGitHub) setForbid(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forbid = b
}
