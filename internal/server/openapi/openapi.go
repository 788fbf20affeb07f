// Package openapi serves the OpenAPI 3.1 description of the gate's /v1 API:
// one hand-written document, openapi.yaml, embedded in the binary and
// served as JSON at /v1/openapi.json, and rendered as an HTML reference
// page (no scripts) at /v1/openapi.html. Neither needs a token.
//
// Add a route to the server, add its path to openapi.yaml: a test in gate/
// fails while the two differ.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var source []byte

// YAML returns the document as written.
func YAML() []byte { return source }

var (
	once    sync.Once
	docJSON []byte
	docErr  error
)

// JSON returns the document converted to JSON.
func JSON() ([]byte, error) {
	once.Do(func() {
		var v any
		if err := yaml.Unmarshal(source, &v); err != nil {
			docErr = fmt.Errorf("parsing openapi.yaml: %w", err)
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			docErr = fmt.Errorf("converting openapi.yaml to JSON: %w", err)
			return
		}
		docJSON = b
	})
	return docJSON, docErr
}

// Route adds GET /v1/openapi.json and GET /v1/openapi.html to e, outside
// the token-checked /v1 group.
func Route(e *echo.Echo) error {
	b, err := JSON()
	if err != nil {
		return err
	}
	page, err := Reference(b)
	if err != nil {
		return err
	}
	e.GET("/v1/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
	e.GET("/v1/openapi.html", func(c echo.Context) error {
		return c.HTMLBlob(http.StatusOK, page)
	})
	return nil
}

// document is the part of an OpenAPI document the reference page shows.
type document struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]parameter `json:"parameters"`
		Responses  map[string]response  `json:"responses"`
	} `json:"components"`
}

type parameter struct {
	Ref         string `json:"$ref"`
	Name        string `json:"name"`
	In          string `json:"in"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
	Schema      schema `json:"schema"`
}

type schema struct {
	Ref     string `json:"$ref"`
	Type    any    `json:"type"`
	Enum    []any  `json:"enum"`
	Default any    `json:"default"`
}

// String names a schema briefly: its $ref's name, or its type and values.
func (s schema) String() string {
	if s.Ref != "" {
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	}
	out := fmt.Sprint(s.Type)
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		out += " (" + strings.Join(vals, ", ") + ")"
	}
	if s.Default != nil {
		out += fmt.Sprintf(", default %v", s.Default)
	}
	return out
}

type response struct {
	Ref         string                `json:"$ref"`
	Description string                `json:"description"`
	Content     map[string]mediaValue `json:"content"`
}

type mediaValue struct {
	Schema schema `json:"schema"`
}

type operation struct {
	OperationID string              `json:"operationId"`
	Summary     string              `json:"summary"`
	Description string              `json:"description"`
	Security    *[]any              `json:"security"`
	Parameters  []parameter         `json:"parameters"`
	RequestBody *response           `json:"requestBody"`
	Responses   map[string]response `json:"responses"`
}

// pageOp is one operation as the page lists it.
type pageOp struct {
	Method, Path string
	operation
	Public    bool
	Params    []parameter
	Body      []string
	Responses []pageResponse
}

type pageResponse struct {
	Status, Description string
	Bodies              []string
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// Reference renders the document as an HTML page listing every operation
// with its parameters, body and answers.
func Reference(docJSON []byte) ([]byte, error) {
	var d document
	if err := json.Unmarshal(docJSON, &d); err != nil {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	resolveParam := func(p parameter) parameter {
		if p.Ref != "" {
			return d.Components.Parameters[p.Ref[strings.LastIndex(p.Ref, "/")+1:]]
		}
		return p
	}
	resolveResp := func(r response) response {
		if r.Ref != "" {
			return d.Components.Responses[r.Ref[strings.LastIndex(r.Ref, "/")+1:]]
		}
		return r
	}
	bodies := func(r response) []string {
		var out []string
		for ct, m := range r.Content {
			out = append(out, ct+": "+m.Schema.String())
		}
		sort.Strings(out)
		return out
	}
	var ops []pageOp
	for path, item := range d.Paths {
		var shared []parameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("reading the parameters of %s: %w", path, err)
			}
		}
		for _, m := range methods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("reading %s %s: %w", m, path, err)
			}
			po := pageOp{Method: strings.ToUpper(m), Path: path, operation: op, Public: op.Security != nil && len(*op.Security) == 0}
			for _, p := range append(slices.Clone(shared), op.Parameters...) {
				po.Params = append(po.Params, resolveParam(p))
			}
			if op.RequestBody != nil {
				po.Body = bodies(*op.RequestBody)
			}
			for status, r := range op.Responses {
				r = resolveResp(r)
				po.Responses = append(po.Responses, pageResponse{Status: status, Description: r.Description, Bodies: bodies(r)})
			}
			sort.Slice(po.Responses, func(i, j int) bool { return po.Responses[i].Status < po.Responses[j].Status })
			ops = append(ops, po)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return slices.Index(methods, strings.ToLower(ops[i].Method)) < slices.Index(methods, strings.ToLower(ops[j].Method))
	})
	var b strings.Builder
	if err := page.Execute(&b, map[string]any{"Info": d.Info, "Ops": ops}); err != nil {
		return nil, fmt.Errorf("rendering the reference page: %w", err)
	}
	return []byte(b.String()), nil
}

var page = template.Must(template.New("reference").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Info.Title}} reference</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
section{border-top:1px solid #ccc;padding:.5rem 0}
code,.method{font-family:ui-monospace,monospace}
.method{font-weight:bold;display:inline-block;min-width:4.5rem}
table{border-collapse:collapse}td,th{text-align:left;padding:.1rem .6rem .1rem 0;vertical-align:top}
</style>
</head>
<body>
<h1>{{.Info.Title}} <small>v{{.Info.Version}}</small></h1>
<p>The machine-readable document: <a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1).</p>
<pre>{{.Info.Description}}</pre>
<nav aria-label="Operations"><ul>
{{range .Ops}}<li><a href="#{{.OperationID}}"><span class="method">{{.Method}}</span> <code>{{.Path}}</code></a></li>
{{end}}</ul></nav>
{{range .Ops}}<section id="{{.OperationID}}">
<h2><span class="method">{{.Method}}</span> <code>{{.Path}}</code></h2>
<p>{{.Summary}}{{if .Public}} No token needed.{{end}}</p>
{{with .Description}}<p>{{.}}</p>{{end}}
{{with .Params}}<h3>Parameters</h3><table><tr><th>Name</th><th>In</th><th>Schema</th><th>Description</th></tr>
{{range .}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{.Schema}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
{{with .Body}}<h3>Request body</h3><ul>{{range .}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<h3>Answers</h3><table>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range .Bodies}}<code>{{.}}</code> {{end}}</td></tr>
{{end}}</table>
</section>
{{end}}
</body>
</html>
`))
