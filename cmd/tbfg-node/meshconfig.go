package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tbfg/tbfg-node/internal/flagfile"
	"github.com/tbfg/tbfg-node/node"
)

// configOff is the --config value that reads no settings file.
const configOff = "off"

// daemonCommands are the commands that read the settings file. They share
// it: a key that is a flag of one of them only (secret-file of join) is
// skipped by the others.
var daemonCommands = []string{"init", "join", "run"}

// etcConfigFile is root's settings file (a variable for tests).
var etcConfigFile = "/etc/tbfg/config.toml"

// defaultConfigFile is the settings file read when --config is not given,
// if it exists: /etc/tbfg/config.toml for root (a node run as a system
// service), else $XDG_CONFIG_HOME/tbfg/config.toml (~/.config/tbfg/…), as
// the data dir is /var/lib/tbfg for root and under the user's home otherwise.
func defaultConfigFile() string {
	if os.Geteuid() == 0 {
		return etcConfigFile
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "tbfg", "config.toml")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config", "tbfg", "config.toml")
	}
	return ""
}

// loadConfig gives the flags of fs not set on the command line their values
// from the settings file path (the default file when path is empty and it
// exists, none when path is "off"). It returns the file read, if any, and
// where each flag's value came from. So the order is defaults < file <
// flags, and the file is checked by the same code as the flags.
// Keys in skip, flags of fs that are not settings, are errors in the file.
func loadConfig(fset *flag.FlagSet, path string, skip ...string) (string, flagfile.Sources, error) {
	file, data, err := readConfig(path)
	if err != nil || file == "" {
		src, _ := flagfile.Apply(fset, "", nil, nil)
		return "", src, err
	}
	settings, err := flagfile.Parse(file, data)
	if err != nil {
		return file, nil, err
	}
	keys := daemonKeys()
	src, err := flagfile.Apply(fset, file, settings, func(k string) bool { return keys[k] }, append(skip, "config")...)
	return file, src, err
}

// readConfig reads the settings file path stands for; file is "" when
// there is none to read.
func readConfig(path string) (file string, data []byte, err error) {
	switch path {
	case configOff:
		return "", nil, nil
	case "":
		path = defaultConfigFile()
		if path == "" {
			return "", nil, nil
		}
		data, err = os.ReadFile(path)
		// Absent, or below a directory this user cannot search (a HOME
		// that is not its own, as under setpriv or sudo -u): not this
		// user's file. A file it can see but not read is an error.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) && !visible(path) {
			return "", nil, nil
		}
	default:
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", nil, fmt.Errorf("--config: %w", err)
	}
	return path, data, nil
}

// visible reports whether path exists as far as this user can tell.
func visible(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// daemonKeys is the set of keys a settings file may hold: the flag names of
// the daemon commands.
func daemonKeys() map[string]bool {
	keys := map[string]bool{}
	for _, name := range daemonCommands {
		if fs := flagSetOf(name); fs != nil {
			fs.VisitAll(func(f *flag.Flag) { keys[f.Name] = true })
		}
	}
	return keys
}

// configuredDataDir is the data dir the client commands talk to by default:
// the one the default settings file gives, so that a node configured with
// data-dir in /etc/tbfg/config.toml answers a plain `tbfg-node status`.
// A missing or unreadable file gives node.DefaultDataDir; the daemon reports
// what is wrong with it.
func configuredDataDir() string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	dir := fs.String("data-dir", node.DefaultDataDir(), "")
	file, data, err := readConfig("")
	if err != nil || file == "" {
		return *dir
	}
	settings, err := flagfile.Parse(file, data)
	if err != nil {
		return *dir
	}
	if _, err := flagfile.Apply(fs, file, settings, func(string) bool { return true }); err != nil {
		return node.DefaultDataDir()
	}
	return *dir
}
