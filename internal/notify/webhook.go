package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=" and the lower-case hex
	// HMAC-SHA256 of the raw request body, keyed with the channel's secret.
	SignatureHeader = "X-Buildgate-Signature"
	// EventHeader names the event type.
	EventHeader = "X-Buildgate-Event"
	// DeliveryHeader identifies the delivery; a receiver that sees the
	// same id twice (a retry after a lost answer) can drop the repeat.
	DeliveryHeader = "X-Buildgate-Delivery"
)

// Sign returns the X-Buildgate-Signature value of body under key:
// "sha256=<hex HMAC-SHA256(key, body)>".
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under key, comparing
// in constant time.
func Verify(key, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(strings.TrimSpace(header)))
}

// Webhook posts a message's JSON body to the channel's URL, signed with the
// channel's secret.
type Webhook struct {
	// Client sends the requests; nil means one that follows no redirect.
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// Send posts msg.Body. Any 2xx answer is success.
func (w Webhook) Send(ctx context.Context, ch buildgate.Channel, key secret.Secret, msg buildgate.Message) (buildgate.SendResult, error) {
	if ch.URL == "" {
		return buildgate.SendResult{}, permanentf("webhook channel %q has no url", ch.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.URL, bytes.NewReader(msg.Body))
	if err != nil {
		return buildgate.SendResult{}, permanentf("webhook url of channel %q: %v", ch.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent(w.UserAgent))
	req.Header.Set(EventHeader, msg.Event)
	if msg.DeliveryID != "" {
		req.Header.Set(DeliveryHeader, msg.DeliveryID)
	}
	if key != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(key), msg.Body))
	}
	return post(newHTTPClient(w.Client), req)
}

func userAgent(ua string) string {
	if ua == "" {
		return "buildgate"
	}
	return ua
}

// post sends req and reads its answer.
func post(c *http.Client, req *http.Request) (buildgate.SendResult, error) {
	resp, err := c.Do(req)
	if err != nil {
		// url.Error quotes the URL, which may hold a token (a Slack
		// webhook's URL is its secret): keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return buildgate.SendResult{}, fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	answer := readAnswer(resp)
	res := buildgate.SendResult{StatusCode: resp.StatusCode, Answer: answer}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, httpError(resp, answer)
	}
	return res, nil
}
