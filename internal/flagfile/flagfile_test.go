package flagfile

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// size is a flag with its own Set that is not a flag.Getter.
type size int64

func (s *size) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *size) Set(v string) error {
	n, err := strconv.ParseInt(strings.TrimSuffix(v, "K"), 10, 64)
	*s = size(n)
	return err
}

type testFlags struct {
	fs      *flag.FlagSet
	builds  int
	load    float64
	voter   bool
	dir     string
	every   time.Duration
	peers   list
	cache   size
	level   slog.Level
	profile string
}

func newTestFlags() *testFlags {
	t := &testFlags{fs: flag.NewFlagSet("test", flag.ContinueOnError), cache: 10}
	t.fs.SetOutput(io.Discard)
	t.fs.IntVar(&t.builds, "max-builds", 0, "builds run at once (default the number of cores)")
	t.fs.Float64Var(&t.load, "max-load", 0, "load `LOAD` limit")
	t.fs.BoolVar(&t.voter, "voter", true, "may vote")
	t.fs.StringVar(&t.dir, "data-dir", "/var/lib/x", "state `DIR`")
	t.fs.DurationVar(&t.every, "gossip-interval", 3*time.Second, "every `INTERVAL`")
	t.fs.Var(&t.peers, "peer", "dial `ADDR`, repeatable")
	t.fs.Var(&t.cache, "cache", "cache `SIZE` (default 10K)")
	t.fs.TextVar(&t.level, "log-level", slog.LevelInfo, "log `LEVEL`")
	t.fs.StringVar(&t.profile, "config", "", "settings `FILE`")
	return t
}

func apply(t *testing.T, name, file string, args ...string) (*testFlags, Sources, error) {
	t.Helper()
	f := newTestFlags()
	if err := f.fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	settings, err := Parse(name, []byte(file))
	if err != nil {
		return f, nil, err
	}
	src, err := Apply(f.fs, name, settings, func(k string) bool { return k == "secret" }, "config")
	return f, src, err
}

func TestApplyTOML(t *testing.T) {
	file := `# a comment
max-builds = 3
max-load = 2.5

voter = false
peer = [
  "/ip4/198.18.0.1/tcp/8760",
  "/ip4/198.18.0.2/tcp/8760",
]
gossip-interval = "1s"
cache = "4K"
log-level = "debug"
secret = "only for join"
data-dir = "/srv/file"
`
	f, src, err := apply(t, "config.toml", file, "--data-dir", "/srv/flag")
	if err != nil {
		t.Fatal(err)
	}
	if f.builds != 3 || f.load != 2.5 || f.voter || f.every != time.Second || f.cache != 4 ||
		f.level != slog.LevelDebug || len(f.peers) != 2 || f.peers[1] != "/ip4/198.18.0.2/tcp/8760" {
		t.Errorf("settings not applied: %+v", f)
	}
	if f.dir != "/srv/flag" {
		t.Errorf("data-dir = %q, want the flag's /srv/flag", f.dir)
	}
	for name, want := range map[string]string{
		"max-builds": "config.toml:2", "voter": "config.toml:5", "peer": "config.toml:6",
		"log-level": "config.toml:12", "data-dir": "flag", "config": "default",
	} {
		if got := src.Of(name).String(); got != want {
			t.Errorf("source of %s = %s, want %s", name, got, want)
		}
	}
}

func TestApplyJSON(t *testing.T) {
	file := "{\n  \"max-builds\": 3,\n  \"peer\": [\"/ip4/198.18.0.1/tcp/8760\"],\n  \"voter\": false\n}\n"
	f, src, err := apply(t, "tbfg.json", file)
	if err != nil {
		t.Fatal(err)
	}
	if f.builds != 3 || f.voter || len(f.peers) != 1 {
		t.Errorf("settings not applied: %+v", f)
	}
	if got := src.Of("voter").String(); got != "tbfg.json:4" {
		t.Errorf("source of voter = %s, want tbfg.json:4", got)
	}
	// Content decides too: a JSON object in a file named .toml.
	if f, _, err := apply(t, "x.toml", ` {"max-builds": 5}`); err != nil || f.builds != 5 {
		t.Errorf("JSON content in x.toml: builds %d, err %v", f.builds, err)
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"config.toml", "\n\nmax-builds = \"lots\"\n", `config.toml:3: max-builds: want an integer, got "lots"`},
		{"config.toml", "voter = \"yes\"", `config.toml:1: voter: want true or false, got "yes"`},
		{"config.toml", "gossip-interval = 5", `config.toml:1: gossip-interval: want a duration such as "90s" or "2m", got 5`},
		{"config.toml", "cache = \"big\"", `config.toml:1: cache: want SIZE, got "big": strconv.ParseInt`},
		{"config.toml", "log-level = \"loud\"", `config.toml:1: log-level: want LEVEL, got "loud"`},
		{"config.toml", "# c\nlisten-addr = \":1\"", `config.toml:2: listen-addr: unknown key`},
		{"config.toml", "config = \"other.toml\"", `config.toml:1: config: cannot be set`},
		{"config.toml", "max-builds = [1, 2]", `config.toml:1: max-builds: want an integer, got an array`},
		{"config.toml", "peer = [[\"a\"]]", `config.toml:1: peer: want a value or an array of values, got an array of arrays`},
		{"config.toml", "max-builds = 1\n[node]\nvoter = true", `config.toml:2: node: want a value, got a table`},
		{"config.toml", "a.b = 1", `config.toml:1: a: want a value, got a table`},
		{"config.toml", "when = 1979-05-27", `config.toml:1: when: want a value, got a date`},
		{"config.toml", "x = 1\nmax-builds = = 3", `config.toml:2: `},
		{"config.toml", "max-builds = 1\nmax-builds = 2", `config.toml:2: `},
		{"c.json", "{\n\"max-builds\": 1,\n\"max-builds\": 2}", `c.json:3: max-builds: set twice (first on line 2)`},
		{"c.json", "[\"run\"]", `c.json:1: want a JSON object of flag names`},
		{"c.json", "{\"peer\": {\"a\": 1}}", `c.json:1: peer: want a value, got a table`},
		{"c.json", "{\"voter\": true}\n{}", `c.json:2: want one JSON object`},
		{"c.json", "{\n\"voter\": tru}", `c.json:2: invalid character`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, _, err := apply(t, tc.name, tc.file)
			var fe *Error
			if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want *Error starting %q", err, tc.want)
			}
		})
	}
}

func TestSourcesOfTheCommandLine(t *testing.T) {
	f, src, err := apply(t, "c.toml", "max-builds = 2\n", "--max-builds", "7")
	if err != nil || f.builds != 7 || src.Of("max-builds").Kind != FromFlag {
		t.Errorf("flag did not win: builds %d, source %v, err %v", f.builds, src.Of("max-builds"), err)
	}
}

func TestExampleParsesBackToTheDefaults(t *testing.T) {
	f := newTestFlags()
	var entries []Entry
	f.fs.VisitAll(func(fl *flag.Flag) {
		if fl.Name != "config" {
			entries = append(entries, Entry{Flag: fl, Computed: fl.Name == "data-dir"})
		}
	})
	var b strings.Builder
	if err := Example(&b, "tbfg-node settings.\nSecond line.", entries); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{"# tbfg-node settings.\n# Second line.\n", "# state DIR\n# data-dir = \"/var/lib/x\"\n",
		"# builds run at once (default the number of cores)\n# max-builds = 0\n", "\nvoter = true\n",
		"\ngossip-interval = \"3s\"\n", "\npeer = []\n", "\ncache = \"10K\"\n", "\nlog-level = \"INFO\"\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("example lacks %q:\n%s", want, text)
		}
	}
	g, src, err := apply(t, "example.toml", text)
	if err != nil {
		t.Fatalf("example does not parse back: %v\n%s", err, text)
	}
	g.fs.VisitAll(func(fl *flag.Flag) {
		if fl.Value.String() != fl.DefValue {
			t.Errorf("%s = %q after the example, want default %q", fl.Name, fl.Value.String(), fl.DefValue)
		}
	})
	if src.Of("voter").Kind != FromFile || src.Of("max-builds").Kind != FromDefault {
		t.Errorf("sources: voter %v, max-builds %v", src.Of("voter"), src.Of("max-builds"))
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{`a"b\c`: `"a\"b\\c"`, "t\tn\n": `"t\u0009n\u000A"`, "é": `"é"`} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzConfigFile feeds arbitrary settings files through Parse and Apply:
// no panic, and every error is an *Error naming the file and a line the
// file has.
func FuzzConfigFile(f *testing.F) {
	f.Add("c.toml", "max-builds = 3\npeer = [\"a\", \"b\"]\nvoter = false\n")
	f.Add("c.toml", "[t]\nx = 1\n")
	f.Add("c.toml", "s = '''\nmax-builds = 1\n'''\nmax-builds = \"x\"\n")
	f.Add("c.json", `{"max-builds": 3, "peer": ["a"], "cache": "1K"}`)
	f.Add("c.json", `{"x": [[1]]}`)
	f.Fuzz(func(t *testing.T, name, file string) {
		if name == "" {
			name = "c"
		}
		fl := newTestFlags()
		settings, err := Parse(name, []byte(file))
		if err == nil {
			_, err = Apply(fl.fs, name, settings, nil, "config")
		}
		if err == nil {
			return
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.File != name {
			t.Fatalf("error %v is not an *Error naming %q", err, name)
		}
		if fe.Line < 0 || fe.Line > strings.Count(file, "\n")+1 {
			t.Fatalf("error %v names line %d of a %d-line file", err, fe.Line, strings.Count(file, "\n")+1)
		}
	})
}

// TestKeyLinesBounded checks that keys the line finder cannot see (quoted
// with escapes) do not make it quadratic, and still get a line.
func TestKeyLinesBounded(t *testing.T) {
	var b strings.Builder
	for i := range 50000 {
		b.WriteString(`"\u0061` + strconv.Itoa(i) + `" = 1` + "\n")
	}
	start := time.Now()
	settings, err := Parse("c.toml", []byte(b.String()))
	if err != nil || len(settings) != 50000 {
		t.Fatalf("%d settings, %v", len(settings), err)
	}
	if settings[49999].Line < 1 {
		t.Errorf("line %d", settings[49999].Line)
	}
	t.Logf("50000 escaped keys in %s", time.Since(start))
}
