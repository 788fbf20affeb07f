package report

import (
	"regexp"
	"slices"
	"strings"

	"github.com/buildgate/buildgate/internal/policy"
)

// instruction is one Dockerfile instruction and the line it starts on.
type instruction struct {
	cmd  string // upper case
	raw  string // arguments, continuation lines joined
	line int    // 1-based
}

// dockerfile is a parsed Dockerfile, enough to point at its lines.
type dockerfile struct {
	instrs []instruction
	final  int // index of the final stage's FROM, -1 if none
}

var heredocRE = regexp.MustCompile(`<<(-?)\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?`)

// parseDockerfile reads instructions the way the policy engine does:
// the escape directive, line continuations, comments, blank lines and
// here-documents.
func parseDockerfile(src string) *dockerfile {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	escape := `\`
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "#") {
			break
		}
		k, v, ok := strings.Cut(strings.TrimSpace(t[1:]), "=")
		if !ok || strings.ContainsAny(strings.TrimSpace(k), " \t") {
			break
		}
		if strings.EqualFold(strings.TrimSpace(k), "escape") && strings.TrimSpace(v) == "`" {
			escape = "`"
		}
	}
	df := &dockerfile{final: -1}
	var buf strings.Builder
	start := 0
	flush := func() instruction {
		line := strings.TrimSpace(buf.String())
		buf.Reset()
		cmd, rest := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			cmd, rest = line[:i], line[i+1:]
		}
		return instruction{cmd: strings.ToUpper(cmd), raw: strings.TrimSpace(rest), line: start}
	}
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if buf.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(t, escape) {
			buf.WriteString(strings.TrimSuffix(t, escape))
			continue
		}
		buf.WriteString(t)
		ins := flush()
		if ins.cmd == "RUN" || ins.cmd == "COPY" || ins.cmd == "ADD" {
			for _, hd := range heredocRE.FindAllStringSubmatch(ins.raw, -1) {
				strip, delim := hd[1] == "-", hd[2]
				for i+1 < len(lines) {
					i++
					body := lines[i]
					if strip {
						body = strings.TrimLeft(body, "\t")
					}
					if body == delim {
						break
					}
					ins.raw += "\n" + lines[i]
				}
			}
		}
		df.instrs = append(df.instrs, ins)
	}
	if buf.Len() > 0 {
		df.instrs = append(df.instrs, flush())
	}
	for i, in := range df.instrs {
		if in.cmd == "FROM" {
			df.final = i
		}
	}
	return df
}

// finalStage returns the instructions of the final stage (all of them
// when there is no FROM).
func (d *dockerfile) finalStage() []instruction {
	if d.final < 0 {
		return d.instrs
	}
	return d.instrs[d.final:]
}

// fromLine is the final stage's FROM line, else the first instruction's
// line, else 1.
func (d *dockerfile) fromLine() int {
	if d.final >= 0 {
		return d.instrs[d.final].line
	}
	if len(d.instrs) > 0 {
		return d.instrs[0].line
	}
	return 1
}

var (
	instructionMsgRE = regexp.MustCompile(`(?s)^Dockerfile directive '([^']*)' check '[^']*' matched against '.*' for line '(.*)'$`)
	exposedPortRE    = regexp.MustCompile(`port \(([^)]*)\)`)
)

// lineOf returns the Dockerfile line a finding points at: the matching
// instruction for dockerfile-gate findings (EXPOSE for exposed_ports, the
// effective USER for effective_user, the instruction itself for
// instruction), else the final stage's FROM line.
func (d *dockerfile) lineOf(f *policy.Finding) int {
	if f.Gate != "dockerfile" {
		return d.fromLine()
	}
	final := d.finalStage()
	switch f.Trigger {
	case "exposed_ports":
		var ports []string
		if m := exposedPortRE.FindStringSubmatch(f.Message); m != nil {
			ports = []string{m[1]}
		}
		for _, in := range final {
			if in.cmd != "EXPOSE" {
				continue
			}
			if len(ports) == 0 || slices.Contains(strings.Fields(in.raw), ports[0]) {
				return in.line
			}
		}
		for _, in := range final {
			if in.cmd == "EXPOSE" {
				return in.line
			}
		}
	case "effective_user":
		for i := len(final) - 1; i >= 0; i-- {
			if final[i].cmd == "USER" {
				return final[i].line
			}
		}
	case "instruction":
		if m := instructionMsgRE.FindStringSubmatch(f.Message); m != nil {
			cmd := strings.ToUpper(m[1])
			for _, in := range d.instrs {
				if in.cmd == cmd && in.raw == m[2] {
					return in.line
				}
			}
			for _, in := range d.instrs {
				if in.cmd == cmd {
					return in.line
				}
			}
		}
	}
	return d.fromLine()
}
