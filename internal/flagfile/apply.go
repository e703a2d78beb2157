package flagfile

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Kind is where a flag's value came from.
type Kind int

// The places a value comes from, weakest first.
const (
	FromDefault Kind = iota
	FromFile
	FromFlag
)

// Source says where a flag's value came from: its default, a line of a
// settings file, or the command line.
type Source struct {
	Kind Kind
	File string
	Line int
}

func (s Source) String() string {
	switch s.Kind {
	case FromFile:
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	case FromFlag:
		return "flag"
	}
	return "default"
}

// Sources maps flag names to where their values came from.
type Sources map[string]Source

// Of returns where flag name's value came from (the default unless
// recorded otherwise).
func (s Sources) Of(name string) Source { return s[name] }

// Apply sets every flag of fs that the command line did not set from the
// settings read from file, and returns where each flag's value came from.
// A key that is not a flag of fs is an error unless elsewhere reports it
// (a flag of a sibling command that shares the file), in which case it is
// skipped. Keys in skip are errors too: flags that make no sense in a file.
func Apply(fs *flag.FlagSet, file string, settings []Setting, elsewhere func(string) bool, skip ...string) (Sources, error) {
	src := Sources{}
	fs.Visit(func(f *flag.Flag) { src[f.Name] = Source{Kind: FromFlag} })
	seen := map[string]int{}
	for _, s := range settings {
		fail := func(err error) (Sources, error) {
			return nil, &Error{File: file, Line: s.Line, Key: s.Key, Err: err}
		}
		if first, dup := seen[s.Key]; dup {
			return fail(fmt.Errorf("set twice (first on line %d)", first))
		}
		seen[s.Key] = s.Line
		f := fs.Lookup(s.Key)
		switch {
		case contains(skip, s.Key):
			return fail(errors.New("cannot be set in a settings file"))
		case f == nil && elsewhere != nil && elsewhere(s.Key):
			continue
		case f == nil:
			return fail(errors.New("unknown key (keys are the flag names of the command)"))
		case src[s.Key].Kind == FromFlag:
			continue
		}
		if err := set(f, s.Value); err != nil {
			return fail(err)
		}
		src[s.Key] = Source{Kind: FromFile, File: file, Line: s.Line}
	}
	return src, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// set gives f the value v: each element of an array for a repeatable flag.
func set(f *flag.Flag, v any) error {
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	} else if !Repeatable(f) {
		return fmt.Errorf("want %s, got an array (the flag takes one value)", Want(f))
	}
	for _, e := range list {
		text := valueText(e)
		if err := f.Value.Set(text); err != nil {
			return badValue(f, e, err)
		}
	}
	return nil
}

// badValue explains that f does not take e, with Set's own reason when it
// says more than the expected type does.
func badValue(f *flag.Flag, e any, err error) error {
	got := quoted(e)
	if _, std := stdType(f); std {
		return fmt.Errorf("want %s, got %s", Want(f), got)
	}
	return fmt.Errorf("want %s, got %s: %w", Want(f), got, err)
}

// valueText is the command-line form of a scalar setting.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case json.Number:
		return v.String()
	}
	return fmt.Sprint(v)
}

// quoted shows a setting as it was written: strings quoted.
func quoted(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return valueText(v)
}

// Repeatable reports whether f takes several values, one per use: its
// flag.Value is a slice.
func Repeatable(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t != nil && t.Kind() == reflect.Slice
}

// stdType describes the value of a flag defined by the flag package's
// typed functions (Int, Bool, Duration…), found through flag.Getter.
func stdType(f *flag.Flag) (string, bool) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "", false
	}
	switch g.Get().(type) {
	case bool:
		return "true or false", true
	case int, int64, uint, uint64:
		return "an integer", true
	case float64:
		return "a number", true
	case time.Duration:
		return `a duration such as "90s" or "2m"`, true
	case string:
		return "a string", true
	}
	return "", false
}

// Want says what f takes: its type for a standard flag, else the name its
// usage text gives the value (flag.UnquoteUsage).
func Want(f *flag.Flag) string {
	if d, ok := stdType(f); ok {
		return d
	}
	name, _ := flag.UnquoteUsage(f)
	if name == "" || name == "value" {
		return "a value"
	}
	return name
}
