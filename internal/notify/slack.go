package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// Slack posts a message with blocks to a Slack incoming webhook, whose URL
// is the channel's secret.
type Slack struct {
	// Client sends the requests; nil means one that follows no redirect.
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// Slack's limits on block text.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// SlackMessage returns the incoming-webhook body of msg: a header, the
// text, the fields (ten at most) and a context line; "text" is the
// fallback for notifications.
func SlackMessage(msg buildgate.Message) []byte {
	m := slackMessage{Text: msg.Title}
	m.Blocks = append(m.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(msg.Title, slackHeaderMax)}})
	if msg.Text != "" {
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(slackEscape(msg.Text), slackSectionMax)}})
	}
	var fields []slackText
	for i, f := range msg.Fields {
		if i == slackFieldsMax {
			break
		}
		fields = append(fields, slackText{Type: "mrkdwn", Text: truncate("*"+slackEscape(f.Name)+"*\n"+slackEscape(f.Value), slackFieldMax)})
	}
	if len(fields) > 0 {
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Fields: fields})
	}
	ctxLine := "buildgate · " + msg.Event
	if msg.DeliveryID != "" {
		ctxLine += " · delivery " + msg.DeliveryID
	}
	m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: ctxLine}}})
	b, _ := json.Marshal(m)
	return b
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Send posts msg as blocks to the webhook URL held in key.
func (s Slack) Send(ctx context.Context, ch buildgate.Channel, key secret.Secret, msg buildgate.Message) (buildgate.SendResult, error) {
	if key == "" {
		return buildgate.SendResult{}, permanentf("slack channel %q has no webhook url", ch.Name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, string(key), bytes.NewReader(SlackMessage(msg)))
	if err != nil {
		// The URL is the secret: never quote it.
		return buildgate.SendResult{}, permanentf("slack channel %q: invalid webhook url", ch.Name)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", userAgent(s.UserAgent))
	return post(newHTTPClient(s.Client), req)
}
