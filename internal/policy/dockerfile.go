package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/buildgate/buildgate"
)

// Instruction is one Dockerfile instruction.
type Instruction struct {
	Cmd  string   // upper-case: RUN, USER, ...
	Raw  string   // the arguments as written, continuation lines joined
	Args []string // the JSON-array form's items, else Raw split on spaces
	JSON bool     // the arguments were a JSON array
	Line int      // first line, 1-based (0 when guessed from history)
}

// ParseDockerfile parses a Dockerfile into instructions. It handles the
// escape parser directive, line continuations (joined as Anchore does:
// each line trimmed, the escape removed, then concatenated), comment and
// blank lines (also inside continuations), instructions in any case,
// JSON-array arguments and here-documents (<<EOF ... EOF, kept in Raw).
func ParseDockerfile(src string) []Instruction {
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

	var out []Instruction
	var buf strings.Builder
	start := 0
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
		ins := splitInstruction(buf.String(), start)
		buf.Reset()
		if ins.Cmd == "RUN" || ins.Cmd == "COPY" || ins.Cmd == "ADD" {
			for _, hd := range heredocRE.FindAllStringSubmatch(ins.Raw, -1) {
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
					ins.Raw += "\n" + lines[i]
				}
			}
		}
		out = append(out, ins)
	}
	if buf.Len() > 0 {
		out = append(out, splitInstruction(buf.String(), start))
	}
	return out
}

var heredocRE = regexp.MustCompile(`<<(-?)\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?`)

// splitInstruction splits "CMD args" into an instruction.
func splitInstruction(line string, lineNo int) Instruction {
	line = strings.TrimSpace(line)
	cmd, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		cmd, rest = line[:i], line[i+1:]
	}
	ins := Instruction{Cmd: strings.ToUpper(cmd), Raw: strings.TrimSpace(rest), Line: lineNo}
	if strings.HasPrefix(ins.Raw, "[") {
		var arr []string
		if err := json.Unmarshal([]byte(ins.Raw), &arr); err == nil {
			ins.Args, ins.JSON = arr, true
			return ins
		}
	}
	ins.Args = strings.Fields(ins.Raw)
	return ins
}

// guessInstructions rebuilds instructions from the image history's
// created_by lines, as Anchore guesses a Dockerfile: "/bin/sh -c #(nop) "
// prefixes are stripped ("#(nop) EXPOSE 80/tcp" is EXPOSE), other shell
// lines are RUN, BuildKit's "RUN /bin/sh -c x # buildkit" is RUN x, and
// "EXPOSE map[80/tcp:{}]" is EXPOSE 80/tcp.
func guessInstructions(history []buildgate.HistoryEntry) []Instruction {
	var out []Instruction
	for _, h := range history {
		if line := historyLine(h.CreatedBy); line != "" {
			out = append(out, splitInstruction(line, 0))
		}
	}
	return out
}

const shellPrefix = "/bin/sh -c "

func historyLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimSpace(strings.TrimSuffix(s, "# buildkit"))
	if s == "" {
		return ""
	}
	if i := strings.Index(s, "#(nop)"); i >= 0 && strings.Contains(s[:i], "/bin/sh -c") {
		s = strings.TrimSpace(s[i+len("#(nop)"):])
	} else if i := strings.Index(s, shellPrefix); i >= 0 && (i == 0 || strings.HasPrefix(s, "|") || strings.HasPrefix(s, "RUN ")) {
		s = "RUN " + strings.TrimSpace(s[i+len(shellPrefix):])
	} else {
		first, _, _ := strings.Cut(s, " ")
		if !slices.Contains(directiveValues, first) {
			s = "RUN " + s
		}
	}
	if cmd, rest, _ := strings.Cut(s, " "); cmd == "EXPOSE" && strings.Contains(rest, "map[") {
		rest = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(rest), "map["), "]")
		var ports []string
		for _, f := range strings.Fields(rest) {
			ports = append(ports, strings.TrimSuffix(f, ":{}"))
		}
		s = "EXPOSE " + strings.Join(ports, " ")
	}
	return s
}

// dockerfileInfo is what the dockerfile gate evaluates.
type dockerfileInfo struct {
	mode   string
	instrs []Instruction
	// exposed are the exposed ports: the final stage's EXPOSE arguments for
	// an actual Dockerfile; for a guessed one the image config's exposed
	// ports, or the history's EXPOSE lines when the config has none.
	exposed []string
	// user is the effective user: for an actual Dockerfile the last USER
	// of the final stage, else the image config's user; when guessed the
	// image config's user (which is what runs), else the history's last
	// USER; root when nothing says.
	user string
}

func (x *evalContext) dockerfile() *dockerfileInfo {
	if x.df != nil {
		return x.df
	}
	f := &x.in.Facts
	df := &dockerfileInfo{mode: DockerfileNone}
	var final []Instruction
	switch {
	case f.Dockerfile != "":
		df.mode = DockerfileActual
		df.instrs = ParseDockerfile(f.Dockerfile)
		final = df.instrs
		for i := len(df.instrs) - 1; i >= 0; i-- {
			if df.instrs[i].Cmd == "FROM" {
				final = df.instrs[i:]
				break
			}
		}
	case len(f.Metadata.History) > 0:
		df.instrs = guessInstructions(f.Metadata.History)
		if len(df.instrs) > 0 {
			df.mode = DockerfileGuessed
		}
		final = df.instrs
	}
	if df.mode == DockerfileGuessed && len(f.Metadata.ExposedPorts) > 0 {
		df.exposed = append(df.exposed, f.Metadata.ExposedPorts...)
	} else {
		for _, in := range final {
			if in.Cmd == "EXPOSE" {
				df.exposed = append(df.exposed, in.Args...)
			}
		}
	}
	if df.mode == DockerfileGuessed {
		df.user = f.Metadata.User
	}
	for _, in := range final {
		if in.Cmd == "USER" && (df.mode == DockerfileActual || f.Metadata.User == "") {
			u := strings.TrimSpace(strings.Trim(strings.TrimSpace(in.Raw), "[]"))
			if fs := strings.Fields(u); len(fs) > 0 {
				df.user = fs[0]
			}
		}
	}
	if df.user == "" {
		df.user = f.Metadata.User
	}
	if df.user == "" {
		df.user = "root"
	}
	x.df = df
	return df
}

// dockerfileApplies reports whether a dockerfile trigger evaluates: there
// is a Dockerfile, actual or guessed, and, for rules with
// actual_dockerfile_only=true, it is the actual one.
func dockerfileApplies(r *compiledRule, df *dockerfileInfo) bool {
	if df.mode == DockerfileNone {
		return false
	}
	return !(r.p.boolean("actual_dockerfile_only") && df.mode != DockerfileActual)
}

// evalInstruction implements dockerfile/instruction with Anchore's
// checks on the instruction's arguments: = and != compare the text,
// like and not_like match a regular expression from its start, in and
// not_in look it up in a comma list, exists fires for each instruction
// and not_exists once if there is none.
func evalInstruction(r *compiledRule, x *evalContext) []fired {
	df := x.dockerfile()
	if !dockerfileApplies(r, df) {
		return nil
	}
	directive, check, value := r.p.str("instruction"), r.p.str("check"), r.p.str("value")
	re := r.p.re("value")
	var list []string
	if check == "in" || check == "not_in" {
		for _, v := range strings.Split(value, ",") {
			list = append(list, strings.TrimSpace(v))
		}
	}
	var out []fired
	found := false
	for _, in := range df.instrs {
		if in.Cmd != directive {
			continue
		}
		found = true
		arg := in.Raw
		var hit bool
		switch check {
		case "=":
			hit = arg == value
		case "!=":
			hit = arg != value
		case "exists":
			hit = true
		case "like":
			hit = re.MatchString(arg)
		case "not_like":
			hit = !re.MatchString(arg)
		case "in":
			hit = slices.Contains(list, arg)
		case "not_in":
			hit = !slices.Contains(list, arg)
		}
		if hit {
			out = append(out, fired{msg: fmt.Sprintf("Dockerfile directive '%s' check '%s' matched against '%s' for line '%s'", directive, check, value, arg)})
		}
	}
	if check == "not_exists" && !found {
		out = append(out, fired{msg: fmt.Sprintf("Dockerfile directive '%s' not found, matching condition '%s' check", directive, check)})
	}
	return out
}

func isAllowType(t string) bool { return t == "whitelist" || t == "allowlist" }

// evalEffectiveUser implements dockerfile/effective_user. A user listed
// as "name" matches "name" and "name:group"; "root" also matches uid 0.
func evalEffectiveUser(r *compiledRule, x *evalContext) []fired {
	df := x.dockerfile()
	if df.mode == DockerfileNone {
		return nil
	}
	user := df.user
	name, _, _ := strings.Cut(user, ":")
	listed := false
	for _, u := range r.p.list("users") {
		if u == user || u == name || (u == "root" && name == "0") {
			listed = true
		}
	}
	if isAllowType(r.p.str("type")) {
		if !listed {
			return []fired{{msg: fmt.Sprintf("User %s found as effective user, which is not on the allowed list", user)}}
		}
	} else if listed {
		return []fired{{msg: fmt.Sprintf("User %s found as effective user, which is explicity not allowed list", user)}}
	}
	return nil
}

// portRange reads an exposed port ("22", "8080/tcp", "8000-8010/udp").
func portRange(s string) (lo, hi int, ok bool) {
	p, _, _ := strings.Cut(strings.TrimSpace(s), "/")
	a, b, isRange := strings.Cut(p, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	return lo, hi, true
}

// evalExposedPorts implements dockerfile/exposed_ports. Port 0 in the list
// stands for any port: a blacklist with 0 fires once if anything is
// exposed, a whitelist with 0 allows everything. Exposed ports that are
// not numbers (unexpanded $VARIABLES) are ignored.
func evalExposedPorts(r *compiledRule, x *evalContext) []fired {
	df := x.dockerfile()
	if !dockerfileApplies(r, df) {
		return nil
	}
	var ports []int
	anyPort := false
	for _, s := range r.p.list("ports") {
		n, _ := strconv.Atoi(s)
		ports = append(ports, n)
		anyPort = anyPort || n == 0
	}
	var exposed []string
	for _, e := range df.exposed {
		if _, _, ok := portRange(e); ok {
			exposed = append(exposed, e)
		}
	}
	listed := func(e string) bool {
		lo, hi, _ := portRange(e)
		for _, p := range ports {
			if p == 0 || (p >= lo && p <= hi) {
				return true
			}
		}
		return false
	}
	var out []fired
	if isAllowType(r.p.str("type")) {
		for _, e := range exposed {
			if !listed(e) {
				out = append(out, fired{msg: "Dockerfile exposes port (" + e + ") which is not in policy file ALLOWEDPORTS list"})
			}
		}
		return out
	}
	if anyPort {
		if len(exposed) > 0 {
			out = append(out, fired{msg: "Dockerfile exposes network ports but policy sets DENIEDPORTS=0: " + pyList(exposed)})
		}
		return out
	}
	for _, e := range exposed {
		if listed(e) {
			out = append(out, fired{msg: "Dockerfile exposes port (" + e + ") which is in policy file DENIEDPORTS list"})
		}
	}
	return out
}

// pyList formats strings as a Python list literal: ['a', 'b'].
func pyList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = "'" + v + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// evalNoDockerfile implements dockerfile/no_dockerfile_provided.
func evalNoDockerfile(_ *compiledRule, x *evalContext) []fired {
	if x.in.Facts.Dockerfile != "" {
		return nil
	}
	return []fired{{msg: "Image was not analyzed with an actual Dockerfile"}}
}
