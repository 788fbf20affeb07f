package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/buildgate/buildgate/internal/report"
	"github.com/buildgate/buildgate/internal/step"
)

// maxNoteBytes keeps a note well under GitLab's 1,000,000 characters.
const maxNoteBytes = 900_000

// maxNotePages bounds the pages of notes read to find ours.
const maxNotePages = 30

// noter keeps the merge request's note with the report.
type noter struct {
	getenv func(string) string
	token  string
	http   *http.Client
	out    io.Writer
}

func (n *noter) printf(format string, args ...any) {
	fmt.Fprintf(n.out, "buildgate: "+format+"\n", args...)
}

// note creates or updates the merge request's note for the image named
// key, on merge request pipelines with a token; any failure is a
// warning.
func (n *noter) note(ctx context.Context, key, markdown string) {
	iidText := n.getenv("CI_MERGE_REQUEST_IID")
	if iidText == "" || strings.EqualFold(n.getenv("BUILDGATE_COMMENT"), "false") {
		return
	}
	if n.token == "" {
		n.printf("no $BUILDGATE_GITLAB_TOKEN: not commenting on merge request !%s", iidText)
		return
	}
	iid, err := strconv.ParseInt(iidText, 10, 64)
	if err != nil {
		n.printf("WARNING: $CI_MERGE_REQUEST_IID %q is not a number: not commenting", iidText)
		return
	}
	// The merge request lives in the target project, which is not the
	// pipeline's for a merge request from a fork.
	pid := cmp.Or(n.getenv("CI_MERGE_REQUEST_PROJECT_ID"), n.getenv("CI_PROJECT_ID"))
	api := n.getenv("CI_API_V4_URL")
	if pid == "" || api == "" {
		n.printf("WARNING: no $CI_PROJECT_ID or $CI_API_V4_URL: not commenting on merge request !%d", iid)
		return
	}
	c, err := gitlab.NewClient(n.token,
		gitlab.WithBaseURL(api),
		gitlab.WithHTTPClient(n.http),
		gitlab.WithCustomRetryMax(2),
		gitlab.WithURLWarningLogger(slog.New(slog.DiscardHandler)),
		gitlab.WithUserAgent("buildgate-gitlab/"+version),
	)
	if err != nil {
		n.printf("WARNING: commenting on merge request !%d: %v", iid, err)
		return
	}
	verb, id, err := upsertNote(ctx, c.Notes, pid, iid, key, noteBody(markdown, key))
	var er *gitlab.ErrorResponse
	switch {
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden:
		n.printf("WARNING: the token may not comment on merge request !%d (403: %s): $BUILDGATE_GITLAB_TOKEN needs the api scope and at least the Reporter role", iid, apiMessage(er))
	case err != nil:
		n.printf("WARNING: commenting on merge request !%d: %v", iid, err)
	default:
		n.printf("%s note %d on merge request !%d", verb, id, iid)
	}
}

// apiMessage is the message of GitLab's error answer: {"message": "..."}.
func apiMessage(er *gitlab.ErrorResponse) string {
	var body struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(er.Body, &body) == nil && body.Message != "" {
		return body.Message
	}
	return er.Message
}

// notes is the part of client-go's NotesService the step uses.
type notes interface {
	ListMergeRequestNotes(pid any, mergeRequest int64, opt *gitlab.ListMergeRequestNotesOptions, options ...gitlab.RequestOptionFunc) ([]*gitlab.Note, *gitlab.Response, error)
	CreateMergeRequestNote(pid any, mergeRequest int64, opt *gitlab.CreateMergeRequestNoteOptions, options ...gitlab.RequestOptionFunc) (*gitlab.Note, *gitlab.Response, error)
	UpdateMergeRequestNote(pid any, mergeRequest, note int64, opt *gitlab.UpdateMergeRequestNoteOptions, options ...gitlab.RequestOptionFunc) (*gitlab.Note, *gitlab.Response, error)
}

// upsertNote updates the merge request's first note that is the report
// of the image named key, or creates one; a note that is ours but may not
// be edited (another user's) is left alone and a new one is created. It
// returns "created" or "updated" and the note's id.
func upsertNote(ctx context.Context, s notes, pid string, iid int64, key, body string) (string, int64, error) {
	existing, err := findNote(ctx, s, pid, iid, key)
	if err != nil {
		return "", 0, fmt.Errorf("listing the notes: %w", err)
	}
	if existing != 0 {
		note, _, err := s.UpdateMergeRequestNote(pid, iid, existing, &gitlab.UpdateMergeRequestNoteOptions{Body: &body}, gitlab.WithContext(ctx))
		if err == nil {
			return "updated", note.ID, nil
		}
		var er *gitlab.ErrorResponse
		forbidden := errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden
		if !forbidden && !errors.Is(err, gitlab.ErrNotFound) {
			return "", 0, fmt.Errorf("updating note %d: %w", existing, err)
		}
	}
	note, _, err := s.CreateMergeRequestNote(pid, iid, &gitlab.CreateMergeRequestNoteOptions{Body: &body}, gitlab.WithContext(ctx))
	if err != nil {
		return "", 0, err
	}
	return "created", note.ID, nil
}

// findNote returns the id of the merge request's first note that is the
// report of the image named key, 0 when there is none.
func findNote(ctx context.Context, s notes, pid string, iid int64, key string) (int64, error) {
	sort, order := "asc", "created_at"
	opt := &gitlab.ListMergeRequestNotesOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: 1}, Sort: &sort, OrderBy: &order}
	for range maxNotePages {
		list, resp, err := s.ListMergeRequestNotes(pid, iid, opt, gitlab.WithContext(ctx))
		if err != nil {
			return 0, err
		}
		for _, nt := range list {
			if !nt.System && step.IsImageReport(nt.Body, key) {
				return nt.ID, nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
	return 0, nil
}

// markdownOf is the Markdown report the step wrote, or an error report.
func markdownOf(r *step.Result) string {
	for _, f := range r.Files {
		if filepath.Base(f) == report.FileName(report.FormatMarkdown) {
			if b, err := os.ReadFile(f); err == nil {
				return string(b)
			}
		}
	}
	var b strings.Builder
	b.WriteString(report.MarkdownMarker + "\n")
	b.WriteString("## buildgate: **ERROR** — no verdict\n\n")
	if r.Image != "" {
		fmt.Fprintf(&b, "- **Image:** `%s`\n\n", strings.ReplaceAll(r.Image, "`", "'"))
	}
	b.WriteString("```\n" + strings.ReplaceAll(r.Line(), "```", "'''") + "\n```\n")
	return b.String()
}

// noteBody is the report as one MR note, cut to GitLab's limit.
func noteBody(markdown, key string) string {
	return step.CommentBody(markdown, key, maxNoteBytes, "the job's artifacts have all of it.")
}
