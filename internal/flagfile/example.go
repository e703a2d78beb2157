package flagfile

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Entry is one flag to describe in an example file: the flag, the commands
// that have it when not every one does, and whether its default is worked
// out when the command runs (then the example shows it commented out).
type Entry struct {
	Flag     *flag.Flag
	Only     []string
	Computed bool
}

// Example writes a settings file in TOML that sets every entry to its
// default, each preceded by its usage text as a comment; header goes first,
// each line commented. A default that the usage text names, "(default
// 10G)", is written as named when setting the flag to it gives the default,
// so Example sets the flags: pass flags made for it. Entries whose default is computed, or described in
// words by the usage text, are written commented out, so that the file
// parses back to exactly the defaults.
func Example(w io.Writer, header string, entries []Entry) error {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
	}
	for _, e := range entries {
		b.WriteString("\n")
		_, usage := flag.UnquoteUsage(e.Flag)
		if len(e.Only) > 0 {
			usage += " (only for " + strings.Join(e.Only, ", ") + ")"
		}
		for _, line := range wrap(usage, 76) {
			b.WriteString("# " + line + "\n")
		}
		value, ok := defaultTOML(e.Flag)
		if named, isNamed := namedDefault(e.Flag); isNamed {
			value = named
		}
		prefix := ""
		if e.Computed || !ok || describedDefault(e.Flag) {
			prefix = "# "
		}
		fmt.Fprintf(&b, "%s%s = %s\n", prefix, e.Flag.Name, value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describedDefault reports whether f's default is its zero value and its
// usage text says in words what that means ("default the number of cores",
// "root only; default 1000-1100").
func describedDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return strings.Contains(f.Usage, "default ")
	}
	return false
}

// defaultInUsage finds a default named by a usage text as one word.
var defaultInUsage = regexp.MustCompile(`\(default ([^\s()]+)\)`)

// namedDefault is the default f's usage text names, as a TOML value: for a
// repeatable flag, whatever it is; else only if setting f to it gives f's
// default.
func namedDefault(f *flag.Flag) (string, bool) {
	m := defaultInUsage.FindStringSubmatch(f.Usage)
	if m == nil {
		return "", false
	}
	if Repeatable(f) {
		return "[" + tomlString(m[1]) + "]", true
	}
	if _, std := stdType(f); std || f.Value.Set(m[1]) != nil || f.Value.String() != f.DefValue {
		return "", false
	}
	return tomlString(m[1]), true
}

// defaultTOML is f's default as a TOML value, and false when it cannot be
// written back exactly (a repeatable flag with a default).
func defaultTOML(f *flag.Flag) (string, bool) {
	if Repeatable(f) {
		if f.DefValue == "" || f.DefValue == "[]" {
			return "[]", true
		}
		return "[" + tomlString(f.DefValue) + "]", false
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return f.DefValue, true
		}
	}
	return tomlString(f.DefValue), true
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// wrap splits text into lines of at most width columns, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
