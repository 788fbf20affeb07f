// Package notify sends alert notifications: webhooks (a JSON body signed
// with HMAC-SHA256), Slack incoming webhooks (a message with blocks) and
// email (SMTP with STARTTLS and authentication). Each sender speaks one
// protocol and knows nothing of alerts, outboxes or retries; it reports
// whether a failure is worth retrying.
package notify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxAnswer bounds the part of an answer a sender keeps.
const MaxAnswer = 512

// Error is a failed send: the answer's status (an HTTP status or an SMTP
// reply code, 0 when there was no answer) and whether retrying can help.
type Error struct {
	StatusCode int
	Answer     string
	Msg        string
	permanent  bool
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Permanent reports whether sending again cannot succeed (a 4xx HTTP
// answer other than 408 and 429, a 5xx SMTP reply, a bad configuration).
func (e *Error) Permanent() bool { return e.permanent }

// permanentf returns a permanent error without an answer.
func permanentf(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), permanent: true}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// readAnswer reads the start of an HTTP answer and drains the rest (up to
// a bound), so the connection can be reused.
func readAnswer(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drained for reuse only
	return truncate(strings.TrimSpace(string(b)), MaxAnswer)
}

// httpError returns the error of a non-2xx HTTP answer.
func httpError(resp *http.Response, answer string) error {
	code := resp.StatusCode
	permanent := code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
	msg := fmt.Sprintf("answered %s", resp.Status)
	if answer != "" {
		msg += ": " + answer
	}
	return &Error{StatusCode: code, Answer: answer, Msg: msg, permanent: permanent}
}

// newHTTPClient returns a client that never follows redirects: a channel
// is sent to the URL it names and nowhere else.
func newHTTPClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// IsPermanent reports whether err says sending again cannot help.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.permanent
}
