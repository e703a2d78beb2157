package flagfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxSize bounds the size of a settings file.
const MaxSize = 1 << 20

// Setting is one key of a settings file and its value: a string, int64,
// float64, bool, json.Number or a []any of them.
type Setting struct {
	Key   string
	Line  int
	Value any
}

// Error is a problem with a settings file, at a line (0 when the whole file
// is wrong) and, when it is about one, a key.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsJSON reports whether a file of this name and content is read as JSON.
func IsJSON(name string, data []byte) bool {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
}

// Parse reads the settings in data, the content of the file name, as JSON
// or TOML (see the package doc), in the order of the file.
func Parse(name string, data []byte) ([]Setting, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: name, Err: fmt.Errorf("larger than %d bytes", MaxSize)}
	}
	if IsJSON(name, data) {
		return parseJSON(name, data)
	}
	return parseTOML(name, data)
}

func parseTOML(name string, data []byte) ([]Setting, error) {
	var m map[string]any
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Err: errors.New(pe.Message)}
		}
		return nil, &Error{File: name, Err: err}
	}
	keys := topKeys(md.Keys())
	lines := keyLines(data, keys)
	var out []Setting
	for _, k := range keys {
		s := Setting{Key: k, Line: lines[k], Value: m[k]}
		if err := checkValue(s.Value); err != nil {
			return nil, &Error{File: name, Line: s.Line, Key: s.Key, Err: err}
		}
		out = append(out, s)
	}
	return out, nil
}

// topKeys is the top-level keys in file order: "a" for a table [a] or a
// dotted key a.b, which Apply then rejects.
func topKeys(keys []toml.Key) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[k[0]] {
			seen[k[0]] = true
			out = append(out, k[0])
		}
	}
	return out
}

// keyLines finds the line of each top-level key. The TOML decoder gives keys
// in file order but not their lines, so each is looked for from the line of
// the one before: a line that starts with the key, bare or quoted, then '='.
// A key it cannot find (a quoted key written with escapes) gets the line of
// the key before it. The lines looked at are bounded, so that a file of such
// keys costs no more than a few passes over it.
func keyLines(data []byte, keys []string) map[string]int {
	lines := strings.Split(string(data), "\n")
	out := map[string]int{}
	at, budget := 0, 4*len(lines)
	for _, k := range keys {
		for i := at; i < len(lines) && budget > 0; i++ {
			budget--
			if definesKey(lines[i], k) {
				at = i
				break
			}
		}
		out[k] = at + 1
	}
	return out
}

// definesKey reports whether line starts with key = (or a table header
// [key], which the caller then rejects).
func definesKey(line, key string) bool {
	line = strings.TrimSpace(line)
	for _, form := range []string{key, `"` + key + `"`, "'" + key + "'"} {
		if rest, ok := strings.CutPrefix(line, form); ok {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ".") {
				return true
			}
		}
		if strings.HasPrefix(line, "["+form+"]") || strings.HasPrefix(line, "[["+form+"]]") {
			return true
		}
	}
	return false
}

// checkValue rejects what no flag can take: tables, nested arrays, dates.
func checkValue(v any) error {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if _, ok := e.([]any); ok {
				return errors.New("want a value or an array of values, got an array of arrays")
			}
			if err := checkValue(e); err != nil {
				return err
			}
		}
		return nil
	case []map[string]any:
		return errors.New("want a value, got an array of tables")
	case map[string]any:
		return errors.New("want a value, got a table (keys are flag names, at the top of the file)")
	case time.Time:
		return errors.New("want a value, got a date (write it as a string)")
	}
	return nil
}

func parseJSON(name string, data []byte) ([]Setting, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(err error) ([]Setting, error) {
		return nil, &Error{File: name, Line: lineAt(data, dec.InputOffset()), Err: err}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fail(errors.New("want a JSON object of flag names"))
	}
	var out []Setting
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := t.(string)
		line := lineAt(data, dec.InputOffset())
		var v any
		if err := dec.Decode(&v); err != nil {
			return fail(err)
		}
		if err := checkValue(v); err != nil {
			return nil, &Error{File: name, Line: line, Key: key, Err: err}
		}
		out = append(out, Setting{Key: key, Line: line, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("want one JSON object, found more after it"))
	}
	return out, nil
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}
