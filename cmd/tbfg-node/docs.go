package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"

	"github.com/tbfg/tbfg-node/internal/version"
)

// docCommands lists the commands that describe tbfg-node itself. The man
// page and the completion script are generated from the commands' own flag
// sets (flagSetOf), so they never go stale.
func docCommands() []command {
	return []command{
		{name: "version", summary: "print the version, the commit and the Go version (also --version)", run: cmdVersion},
		{name: "man", summary: "print the manual page tbfg-node(1), in roff", run: cmdMan},
		{name: "completion", summary: "print the bash completion script", run: cmdCompletion},
	}
}

func cmdMan(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "man", "")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return writeMan(s.out)
}

func cmdCompletion(ctx context.Context, s *stdio, args []string) error {
	fs := newFlags(s, "completion", "[bash]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 || fs.NArg() == 1 && fs.Arg(0) != "bash" {
		return usageError(fs, fmt.Errorf("only bash completion is generated, not %q", strings.Join(fs.Args(), " ")))
	}
	return writeBashCompletion(s.out)
}

// roff escapes text for a man page: backslashes, hyphens (so that flags
// copy and paste as ASCII), a leading dot or quote, newlines, and characters beyond
// ASCII as named glyphs, which every roff reads whatever its input encoding.
func roff(text string) string {
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r == '\n':
			b.WriteByte(' ') // a line of its own could start with a dot
		case r > unicode.MaxASCII:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	text = b.String()
	if strings.HasPrefix(text, ".") || strings.HasPrefix(text, "'") {
		text = `\&` + text
	}
	return text
}

// manIntro is the man page's text before the commands, in roff.
const manIntro = `.SH NAME
tbfg\-node \- a node of the Tiny Build Farm for Guix, a peer\-to\-peer build farm
.SH SYNOPSIS
.B tbfg\-node
.I COMMAND
.RI [ FLAGS ]
.RI [ ARGS ...]
.br
.B tbfg\-node \-\-version
.SH DESCRIPTION
Every build machine runs one
.BR tbfg\-node .
Nodes find each other on the LAN by mDNS, or through
.BR \-\-peer ,
agree on one replicated build queue with Raft, build the derivations the
leader allocates to them, and publish the outputs as signed substitutes that
.BR guix\-daemon (8)
finds by itself.
.PP
.B init
creates a mesh and runs its first node,
.B join
adds a machine to it, and
.B run
runs a node again, e.g. from a service manager.
The other commands talk to the local node through its admin socket in the
data directory, or work on the farm's formats offline.
Flags may be written with one or two dashes.
`

// manFiles is the man page's text after the commands, in roff.
const manFiles = `.SH FILES
.TP
.I /etc/tbfg/config.toml
Settings of
.BR init ,
.B join
and
.B run
when run as root (else
.IR $XDG_CONFIG_HOME/tbfg/config.toml ),
in TOML: keys are the flag names, and a flag on the command line wins.
.B tbfg\-node config example
prints one with every key;
.B tbfg\-node config show
prints the settings in effect and where each comes from.
.TP
.I /var/lib/tbfg
The data directory when run as root (else
.IR $XDG_STATE_HOME/tbfg ):
the node's keys, the mesh secret, the Raft log, its store and build logs,
and the admin socket
.IR admin.sock .
.SH EXIT STATUS
0 on success, 2 for a usage error, 1 for any other error.
.SH SEE ALSO
.BR guix (1),
.BR guix\-daemon (8)
`

// writeMan writes the man page: a section per command with its flags.
func writeMan(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH TBFG\\-NODE 1 \"\" \"%s\" \"User Commands\"\n", roff("tbfg-node "+version.Get().Version))
	b.WriteString(manIntro)
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands() {
		fl := flagsOf(c.name)
		fmt.Fprintf(&b, ".SS \"%s\"\n", roff(strings.TrimSpace("tbfg-node "+c.name+" [FLAGS] "+fl.args)))
		fmt.Fprintf(&b, "%s.\n", roff(capitalize(c.summary)))
		if fl.FlagSet == nil {
			continue
		}
		fl.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			b.WriteString(".TP\n")
			if isBool(f) {
				fmt.Fprintf(&b, ".B \\-\\-%s\n", roff(f.Name))
			} else {
				fmt.Fprintf(&b, ".BI \\-\\-%s \" %s\"\n", roff(f.Name), roff(name))
			}
			if d, ok := manDefaults[f.Name]; ok {
				usage += " (default " + d + ")"
			} else if !isZeroDefault(f) {
				usage += " (default " + f.DefValue + ")"
			}
			b.WriteString(roff(usage) + "\n")
		})
	}
	b.WriteString(manFiles)
	_, err := io.WriteString(w, b.String())
	return err
}

// manDefaults describes the defaults that depend on who runs tbfg-node,
// so that the man page does not show those of whoever generated it.
var manDefaults = map[string]string{
	"data-dir": "/var/lib/tbfg as root, else $XDG_STATE_HOME/tbfg, or the data-dir of the settings file",
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// isBool reports whether f takes no value (--flag alone means true).
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isZeroDefault reports whether f's default is its zero value, which the
// flag package's usage output does not print either.
func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// writeBashCompletion writes a bash completion script: command words, then
// the flags of the command; after a flag that takes a value, and for
// arguments, bash's own file name completion.
func writeBashCompletion(w io.Writer) error {
	first := map[string][]string{}
	var firsts []string
	var cases strings.Builder
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if _, seen := first[words[0]]; !seen {
			firsts = append(firsts, words[0])
		}
		first[words[0]] = append(first[words[0]], words[1:]...)
		var flags, valued []string
		if fs := flagSetOf(c.name); fs != nil {
			fs.VisitAll(func(f *flag.Flag) {
				flags = append(flags, "--"+f.Name)
				if !isBool(f) {
					valued = append(valued, "--"+f.Name)
				}
			})
		}
		fmt.Fprintf(&cases, "    %q) flags=%q; valued=%q ;;\n", c.name, strings.Join(flags, " "), strings.Join(valued, " "))
	}
	var subs strings.Builder
	sort.Strings(firsts)
	for _, f := range firsts {
		if len(first[f]) > 0 {
			fmt.Fprintf(&subs, "    %q) subs=%q ;;\n", f, strings.Join(first[f], " "))
		}
	}
	_, err := fmt.Fprintf(w, bashCompletion, strings.Join(firsts, " ")+" --version --help", subs.String(), cases.String())
	return err
}

// bashCompletion is the completion script, filled in with the command
// words, the second words of two-word commands, and each command's flags.
const bashCompletion = `# bash completion for tbfg-node, generated by tbfg-node completion bash.
_tbfg_node() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur"))
    return
  fi
  local cmd=${COMP_WORDS[1]} subs="" flags="" valued="" n=2
  case $cmd in
%s  esac
  if [ -n "$subs" ]; then
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "$subs" -- "$cur"))
      return
    fi
    cmd="$cmd ${COMP_WORDS[2]}"
    n=3
  fi
  case $cmd in
%s  esac
  case " $valued " in
    *" $prev "*) return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _tbfg_node tbfg-node
`
