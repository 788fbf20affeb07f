package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/buildgate/buildgate/internal/step"
)

// maxCommentBytes keeps a comment under GitHub's 65,536 characters.
const maxCommentBytes = 60000

// maxCommentPages bounds the pages of comments read to find ours.
const maxCommentPages = 30

// comment creates or updates the pull request's comment for this image,
// when the event is a pull request, comments are on and there is a token.
// Any failure is a warning.
func (a *action) comment(ctx context.Context, markdown string) {
	if !a.in.comment || a.in.pr.Number == 0 {
		return
	}
	if a.in.githubToken == "" {
		a.gh.Warningf("buildgate: no github-token: not commenting on pull request #%d", a.in.pr.Number)
		return
	}
	owner, repo, ok := strings.Cut(a.getenv("GITHUB_REPOSITORY"), "/")
	if !ok || owner == "" || repo == "" {
		a.gh.Warningf("buildgate: $GITHUB_REPOSITORY %q is not OWNER/REPO: not commenting", a.getenv("GITHUB_REPOSITORY"))
		return
	}
	c := &commenter{
		api:   strings.TrimRight(cmp.Or(a.getenv("GITHUB_API_URL"), "https://api.github.com"), "/"),
		owner: owner, repo: repo, number: a.in.pr.Number,
		token: a.in.githubToken, http: a.http,
	}
	verb, id, err := c.upsert(ctx, a.in.category, commentBody(markdown, a.in.category))
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		a.gh.Warningf("buildgate: the token may not comment on pull request #%d (403: %s); pull requests from forks get a read-only token, and the workflow needs `permissions: pull-requests: write`", c.number, ae.Message)
	case err != nil:
		a.gh.Warningf("buildgate: commenting on pull request #%d: %v", c.number, err)
	default:
		a.gh.Infof("buildgate: %s comment %d on pull request #%d", verb, id, c.number)
	}
}

// commentBody is the report as one PR comment, cut to GitHub's limit.
func commentBody(markdown, key string) string {
	return step.CommentBody(markdown, key, maxCommentBytes, "the job summary and the SARIF file have all of it.")
}

// commenter talks to GitHub's REST API about one pull request.
type commenter struct {
	api         string
	owner, repo string
	number      int
	token       string
	http        *http.Client
}

// apiError is an answer of the GitHub API that is not a success.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

type issueComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// upsert updates the pull request's comment that is the report of the
// image named key (the first such), or creates one. It returns "created" or "updated" and the
// comment's id. A comment that is ours but may not be edited (another
// user's) is left alone and a new one is created.
func (c *commenter) upsert(ctx context.Context, key, body string) (string, int64, error) {
	existing, err := c.find(ctx, key)
	if err != nil {
		return "", 0, err
	}
	if existing != 0 {
		var got issueComment
		_, err := c.do(ctx, http.MethodPatch, fmt.Sprintf("/repos/%s/%s/issues/comments/%d", c.owner, c.repo, existing), map[string]string{"body": body}, &got)
		var ae *apiError
		if err == nil {
			return "updated", got.ID, nil
		}
		if !errors.As(err, &ae) || (ae.Status != http.StatusForbidden && ae.Status != http.StatusNotFound) {
			return "", 0, fmt.Errorf("updating comment %d: %w", existing, err)
		}
	}
	var got issueComment
	if _, err := c.do(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/%s/issues/%d/comments", c.owner, c.repo, c.number), map[string]string{"body": body}, &got); err != nil {
		return "", 0, err
	}
	return "created", got.ID, nil
}

// find returns the id of the first comment of the pull request that is
// this image's report, 0 when there is none.
func (c *commenter) find(ctx context.Context, key string) (int64, error) {
	for page := 1; page <= maxCommentPages; page++ {
		var comments []issueComment
		path := fmt.Sprintf("/repos/%s/%s/issues/%d/comments?per_page=100&page=%d", c.owner, c.repo, c.number, page)
		header, err := c.do(ctx, http.MethodGet, path, nil, &comments)
		if err != nil {
			return 0, fmt.Errorf("listing the comments: %w", err)
		}
		for _, cm := range comments {
			if step.IsImageReport(cm.Body, key) {
				return cm.ID, nil
			}
		}
		if len(comments) < 100 || !strings.Contains(header.Get("Link"), `rel="next"`) {
			return 0, nil
		}
	}
	return 0, nil
}

// do sends one request to the API, decodes the answer into out and
// returns its header.
func (c *commenter) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "buildgate-action/"+version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return nil, &apiError{Status: resp.StatusCode, Message: e.Message}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decoding the answer to %s %s: %w", method, strings.SplitN(path, "?", 2)[0], err)
	}
	return resp.Header, nil
}
