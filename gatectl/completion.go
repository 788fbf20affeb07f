package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// completion prints a completion script for bash, zsh or fish, built from
// the command table.
func completion(e *env, _ *flag.FlagSet, args []string) error {
	groups := map[string][]string{}
	var tops []string
	for _, c := range commands {
		top, sub, _ := strings.Cut(c.path, " ")
		if _, ok := groups[top]; !ok {
			tops = append(tops, top)
		}
		if sub != "" {
			groups[top] = append(groups[top], sub)
		} else {
			groups[top] = groups[top][:0:0]
		}
	}
	sort.Strings(tops)
	switch args[0] {
	case "bash":
		fmt.Fprint(e.out, "# bash completion for gatectl: source <(gatectl completion bash)\n_gatectl() {\n")
		fmt.Fprint(e.out, "  local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
		fmt.Fprintf(e.out, "  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(tops, " "))
		fmt.Fprint(e.out, "  if [ \"$COMP_CWORD\" -eq 2 ]; then\n    case \"${COMP_WORDS[1]}\" in\n")
		for _, t := range tops {
			words := groups[t]
			if t == "completion" {
				words = []string{"bash", "zsh", "fish"}
			}
			if len(words) > 0 {
				fmt.Fprintf(e.out, "      %s) COMPREPLY=($(compgen -W %q -- \"$cur\"));;\n", t, strings.Join(words, " "))
			}
		}
		fmt.Fprint(e.out, "    esac\n  fi\n}\ncomplete -F _gatectl gatectl\n")
	case "zsh":
		fmt.Fprint(e.out, "#compdef gatectl\n# zsh completion for gatectl: source <(gatectl completion zsh)\n_gatectl() {\n")
		fmt.Fprintf(e.out, "  if (( CURRENT == 2 )); then compadd -- %s; return; fi\n", strings.Join(tops, " "))
		fmt.Fprint(e.out, "  if (( CURRENT == 3 )); then\n    case ${words[2]} in\n")
		for _, t := range tops {
			words := groups[t]
			if t == "completion" {
				words = []string{"bash", "zsh", "fish"}
			}
			if len(words) > 0 {
				fmt.Fprintf(e.out, "      %s) compadd -- %s;;\n", t, strings.Join(words, " "))
			}
		}
		fmt.Fprint(e.out, "    esac\n  fi\n}\nif [ \"$funcstack[1]\" = \"_gatectl\" ]; then _gatectl \"$@\"; else compdef _gatectl gatectl; fi\n")
	case "fish":
		fmt.Fprint(e.out, "# fish completion for gatectl: gatectl completion fish | source\ncomplete -c gatectl -f\n")
		fmt.Fprintf(e.out, "complete -c gatectl -n __fish_use_subcommand -a %q\n", strings.Join(tops, " "))
		for _, t := range tops {
			words := groups[t]
			if t == "completion" {
				words = []string{"bash", "zsh", "fish"}
			}
			if len(words) > 0 {
				fmt.Fprintf(e.out, "complete -c gatectl -n '__fish_seen_subcommand_from %s' -a %q\n", t, strings.Join(words, " "))
			}
		}
		fmt.Fprint(e.out, "complete -c gatectl -l json -d 'print JSON'\ncomplete -c gatectl -l url -d 'gate URL'\ncomplete -c gatectl -l token -d 'API token'\n")
	default:
		return fmt.Errorf("unknown shell %q: want bash, zsh or fish", args[0])
	}
	return nil
}
