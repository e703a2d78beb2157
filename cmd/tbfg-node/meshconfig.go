package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// maxConfigFile bounds the size of a --config file.
const maxConfigFile = 1 << 20

// applyConfigFile gives the daemon flags not set on the command line their
// values from the JSON object in path, whose keys are flag names: strings,
// numbers and booleans as the flag would take them, arrays for repeatable
// flags. So the order is defaults < config file < flags, and the file is
// checked by the same code as the flags.
//
//	{"listen": ["/ip4/0.0.0.0/tcp/8760"], "peer": ["/ip4/…/p2p/…"], "remove-after": "2m", "voter": false}
func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	if len(data) > maxConfigFile {
		return fmt.Errorf("--config %s: larger than %d bytes", path, maxConfigFile)
	}
	var settings map[string]json.RawMessage
	if err := json.Unmarshal(data, &settings); err != nil {
		return fmt.Errorf("--config %s: want a JSON object of flag names: %w", path, err)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := applySetting(fs, name, settings[name], onCommandLine[name]); err != nil {
			return fmt.Errorf("--config %s: %w", path, err)
		}
	}
	return nil
}

// applySetting sets flag name from one JSON value, unless the command line
// set it already.
func applySetting(fs *flag.FlagSet, name string, raw json.RawMessage, overridden bool) error {
	if name == "config" || fs.Lookup(name) == nil {
		return fmt.Errorf("unknown setting %q (keys are the flag names of this command)", name)
	}
	if overridden {
		return nil
	}
	values, err := settingValues(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, v := range values {
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// settingValues turns a JSON value into flag arguments: one for a scalar,
// one per element for an array of scalars.
func settingValues(raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err == nil {
		var out []string
		for _, item := range list {
			v, err := scalar(item)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	v, err := scalar(raw)
	return []string{v}, err
}

// scalar is a JSON string's content, or a number's or boolean's text.
func scalar(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	text := strings.TrimSpace(string(raw))
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch v.(type) {
	case float64, bool:
		return text, nil
	}
	return "", fmt.Errorf("want a string, number or boolean, got %s", text)
}
