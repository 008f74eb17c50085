package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// keyValue is one setting of a config file.
type keyValue struct {
	line       int
	key, value string
}

// parseConfig reads a config file: one "key = value" per line, keys being
// the command-line flag names without the dash; blank lines and lines
// starting with '#' are ignored, blanks around key and value are trimmed,
// and a value may be wrapped in double quotes to keep blanks at its ends.
func parseConfig(r io.Reader) ([]keyValue, error) {
	var kvs []keyValue
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		kvs = append(kvs, keyValue{line: n, key: k, value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return kvs, nil
}

// applyConfig sets the flags of fs from the config file at path, except
// those set on the command line, which win.
func applyConfig(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	kvs, err := parseConfig(f)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for _, kv := range kvs {
		if kv.key == "config" || fs.Lookup(kv.key) == nil {
			return fmt.Errorf("config %s: line %d: unknown key %q", path, kv.line, kv.key)
		}
		if explicit[kv.key] {
			continue
		}
		if err := fs.Set(kv.key, kv.value); err != nil {
			return fmt.Errorf("config %s: line %d: %s: %w", path, kv.line, kv.key, err)
		}
	}
	return nil
}
