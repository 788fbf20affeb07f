package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
)

// fakeGitLab is the part of GitLab's REST API v4 the step calls (merge
// request notes), in process. It records every request.
type fakeGitLab struct {
	// API is the base URL, for $CI_API_V4_URL.
	API string

	token string

	mu       sync.Mutex
	notes    map[string][]*fakeNote // by project/iid
	nextID   int64
	requests []string
	// forbid answers 403 to every write.
	forbid bool
}

type fakeNote struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"`
	Author struct {
		Username string `json:"username"`
	} `json:"author"`
}

const botUser = "project_42_bot"

var (
	notesRE = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$`)
	noteRE  = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$`)
)

func newFakeGitLab(t *testing.T, token string) *fakeGitLab {
	f := &fakeGitLab{token: token, notes: map[string][]*fakeNote{}, nextID: 500}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.API = srv.URL + "/api/v4"
	return f
}

func (f *fakeGitLab) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"message": msg})
	}
	if r.Header.Get("PRIVATE-TOKEN") != f.token {
		fail(http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	if f.forbid && r.Method != http.MethodGet {
		fail(http.StatusForbidden, "403 Forbidden")
		return
	}
	var in struct {
		Body string `json:"body"`
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Body == "" {
			fail(http.StatusBadRequest, "body is missing")
			return
		}
	}
	if m := notesRE.FindStringSubmatch(r.URL.Path); m != nil {
		key := m[1] + "!" + m[2]
		switch r.Method {
		case http.MethodGet:
			if r.URL.Query().Get("sort") != "asc" {
				fail(http.StatusBadRequest, "want sort=asc")
				return
			}
			perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
			if perPage <= 0 {
				perPage = 20
			}
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			page = max(page, 1)
			all := f.notes[key]
			from, to := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
			if to < len(all) {
				w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
			}
			w.Header().Set("X-Page", strconv.Itoa(page))
			json.NewEncoder(w).Encode(all[from:to])
		case http.MethodPost:
			n := &fakeNote{ID: f.nextID, Body: in.Body}
			n.Author.Username = botUser
			f.nextID++
			f.notes[key] = append(f.notes[key], n)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(n)
		default:
			fail(http.StatusMethodNotAllowed, "405 Method Not Allowed")
		}
		return
	}
	if m := noteRE.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPut {
		id, _ := strconv.ParseInt(m[3], 10, 64)
		for _, n := range f.notes[m[1]+"!"+m[2]] {
			if n.ID != id {
				continue
			}
			if n.Author.Username != botUser {
				fail(http.StatusForbidden, "403 Forbidden")
				return
			}
			n.Body = in.Body
			json.NewEncoder(w).Encode(n)
			return
		}
	}
	fail(http.StatusNotFound, "404 Not Found")
}

// add puts a note on a merge request ("42!3").
func (f *fakeGitLab) add(mr, user, body string, system bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &fakeNote{ID: f.nextID, Body: body, System: system}
	n.Author.Username = user
	f.nextID++
	f.notes[mr] = append(f.notes[mr], n)
}

// Notes returns a merge request's notes ("42!3").
func (f *fakeGitLab) Notes(mr string) []fakeNote {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeNote
	for _, n := range f.notes[mr] {
		out = append(out, *n)
	}
	return out
}

// Requests returns the requests so far and forgets them.
func (f *fakeGitLab) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

func (f *fakeGitLab) setForbid(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forbid = b
}

func (n fakeNote) String() string { return fmt.Sprintf("note %d by %s", n.ID, n.Author.Username) }
