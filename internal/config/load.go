package config

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// RegisterFlags defines a flag for every setting on fs, so each command can
// show them in --help. Flag names are the config-file keys with dashes
// (--lattice-prefix, --rpc-port, ...), plus --config and the repeatable
// --label key=value. Calling it twice on one FlagSet panics, as pflag does.
func RegisterFlags(fs *pflag.FlagSet) {
	for i := range settings {
		s := &settings[i]
		name, usage := s.flag(), s.usage
		if s.def == nil && s.defHelp != "" && !strings.HasPrefix(s.defHelp, "(") {
			usage += " (default " + s.defHelp + ")"
		}
		if s.secret {
			// Other local users can read a process's arguments.
			usage += "; visible in ps, prefer the environment"
		}
		usage += " [" + s.envDisplay() + "]"
		switch s.kind {
		case kindConfig, kindString:
			def, _ := s.def.(string)
			fs.String(name, def, usage)
		case kindBool:
			fs.Bool(name, false, usage)
		case kindInt, kindMillis:
			def, _ := s.def.(int)
			fs.Int(name, def, usage)
		case kindUint32:
			def, _ := s.def.(int)
			fs.Uint32(name, uint32(def), usage)
		case kindDuration:
			def, _ := time.ParseDuration(s.def.(string))
			fs.Duration(name, def, usage)
		case kindList:
			fs.StringSlice(name, nil, usage)
		case kindLabels:
			fs.StringArray(name, nil, "host label key=value, repeatable ["+s.envDisplay()+"]")
		}
	}
}

// Load builds the Config from, highest precedence first: the flags set on fs
// (may be nil), environment variables as lookupEnv reports them, the config
// file (--config, else LATTICED_CONFIG), and defaults. Pass os.LookupEnv in
// production; tests pass a map's lookup so they never see the real process.
//
// A lookup function cannot list variables, so the names of WASMCLOUD_LABEL_*
// and LATTICED_* variables are taken from os.Environ(), while their values
// still come from lookupEnv (a name it does not know is skipped). Use
// LoadEnviron when the environment is given as a list, e.g. in tests of labels.
//
// The warnings are for the user (log them); the error joins every problem
// found, each a *SettingError naming the setting.
func Load(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (*Config, []string, error) {
	return load(fs, lookupEnv, envNames(os.Environ()))
}

// LoadEnviron is Load with the environment given as "NAME=value" strings in
// the form of os.Environ(); when a name repeats, the last value wins.
func LoadEnviron(fs *pflag.FlagSet, environ []string) (*Config, []string, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	lookup := func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
	return load(fs, lookup, envNames(environ))
}

// envNames returns the variable names in an os.Environ-style list.
func envNames(environ []string) []string {
	names := make([]string, 0, len(environ))
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			names = append(names, k)
		}
	}
	return names
}

func load(fs *pflag.FlagSet, lookup func(string) (string, bool), names []string) (*Config, []string, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	changed := func(name string) *pflag.Flag {
		if fs == nil {
			return nil
		}
		if f := fs.Lookup(name); f != nil && f.Changed {
			return f
		}
		return nil
	}
	var (
		warnings []string
		sources  = map[string]string{}
		e        = &errs{sources: sources}
		failed   = map[string]bool{} // settings whose value could not be decoded
	)

	// The file is read into a fresh viper first, so that AllKeys lists only
	// the file's keys for the unknown-key check.
	v := viper.New()
	path, pathSource := "", ""
	if f := changed("config"); f != nil {
		path, pathSource = f.Value.String(), "--config"
	} else if p, ok := lookup(EnvConfig); ok {
		path = p
	}
	if path != "" {
		if msg := readConfigFile(v, path); msg != "" {
			// Nothing else is worth checking against a file we could not read.
			return nil, nil, &SettingError{Env: EnvConfig, Source: pathSource, Msg: msg}
		}
		if msg := unknownKeys(v, path); msg != "" {
			e.list = append(e.list, &SettingError{Env: EnvConfig, Source: pathSource, Msg: msg})
		}
	}
	inFile := func(key string) string { return key + " in " + path }

	c := &Config{ConfigFile: path, sources: sources}
	for i := range settings {
		s := &settings[i]
		if s.set == nil {
			continue // the config path and labels are handled on their own
		}
		key := s.key()
		def := s.def
		if s.env == EnvDataDir {
			def = defaultDataDir(lookup)
		}
		if def != nil {
			v.SetDefault(key, def)
		}
		if fs != nil {
			if f := fs.Lookup(s.flag()); f != nil {
				// Viper only uses a bound flag when it was set, so an
				// unset flag's default cannot shadow env or file values.
				_ = v.BindPFlag(key, f) // only fails for a nil flag
			}
		}
		switch {
		case changed(s.flag()) != nil:
			sources[s.env] = "--" + s.flag()
		default:
			if val, ok := lookup(s.env); ok {
				// Set outranks flags in viper, so it is used only when the
				// flag was not given: that yields flags > env > file.
				v.Set(key, val)
			} else if v.InConfig(key) {
				sources[s.env] = inFile(key)
			}
		}
		val, msg := decode(s.kind, v.Get(key))
		if msg != "" {
			if s.secret {
				// Secrets are strings; never echo even a malformed one.
				msg = "expected a string (value not shown)"
			}
			e.add(s.env, "%s", msg)
			failed[s.env] = true
			continue
		}
		s.set(c, val)
	}

	c.Labels = loadLabels(v, fs, lookup, names, path, e, &warnings)
	_, structuredInEnv := lookup(EnvStructuredLogging)
	c.StructuredLoggingSet = structuredInEnv || sources[EnvStructuredLogging] != ""

	c.LogLevel = normalizeLogLevel(c.LogLevel)
	c.ClusterIssuers = dedupe(c.ClusterIssuers)
	c.AllowedActorIssuers = dedupe(c.AllowedActorIssuers)
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
	// wasmCloud hosts always trust their own cluster key; without it a host
	// would refuse the invocations it signs itself.
	if c.ClusterSeed != "" && !failed[EnvClusterSeed] {
		if pub, msg := seedPublicKey(c.ClusterSeed, nkeys.PrefixByteCluster); msg == "" && !slices.Contains(c.ClusterIssuers, pub) {
			c.ClusterIssuers = append([]string{pub}, c.ClusterIssuers...)
			warnings = append(warnings, fmt.Sprintf("%s: added %s, the public key of %s, so this host accepts the invocations it signs", EnvClusterIssuers, pub, EnvClusterSeed))
		}
	}
	warnings = append(warnings, unknownLatticedVars(names, lookup)...)

	for _, err := range c.problems().list {
		// A value that could not be decoded was left at zero; its
		// validation error would only repeat the decode error.
		if se, ok := err.(*SettingError); ok && failed[se.Env] {
			continue
		}
		e.list = append(e.list, err)
	}
	if err := e.err(); err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// readConfigFile loads path into v; it returns a message when it cannot.
func readConfigFile(v *viper.Viper, path string) string {
	var typ string
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		typ = "yaml"
	case ".toml":
		typ = "toml"
	default:
		return fmt.Sprintf("%s: unsupported config file type; expected a .yaml, .yml or .toml file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return statMsg(err)
	}
	defer f.Close()
	v.SetConfigType(typ)
	if err := v.ReadConfig(f); err != nil {
		return fmt.Sprintf("%s: cannot parse as %s: %v", path, strings.ToUpper(typ), err)
	}
	return ""
}

// unknownKeys reports top-level keys of the file that are no setting, since
// a misspelt key would otherwise be silently ignored.
func unknownKeys(v *viper.Viper, path string) string {
	known := map[string]bool{}
	for i := range settings {
		if settings[i].kind != kindConfig {
			known[settings[i].key()] = true
		}
	}
	var bad []string
	for _, k := range v.AllKeys() {
		top, _, _ := strings.Cut(k, ".") // labels.x and nested values of known keys
		if !known[top] && !slices.Contains(bad, top) {
			bad = append(bad, top)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	slices.Sort(bad)
	for i, k := range bad {
		bad[i] = strconv.Quote(k)
		if s := closest(k, slices.Sorted(maps.Keys(known))); s != "" {
			bad[i] += " (did you mean " + strconv.Quote(s) + "?)"
		}
	}
	return fmt.Sprintf("%s: unknown key %s; keys are the variable names in lower case without WASMCLOUD_/LATTICED_", path, strings.Join(bad, ", "))
}

// unknownLatticedVars warns about LATTICED_* variables that are no setting:
// the namespace is ours, so such a name is a typo.
func unknownLatticedVars(names []string, lookup func(string) (string, bool)) []string {
	var known []string
	for i := range settings {
		known = append(known, settings[i].env)
	}
	var out []string
	for _, n := range slices.Sorted(slices.Values(names)) {
		if !strings.HasPrefix(n, "LATTICED_") || slices.Contains(known, n) {
			continue
		}
		if _, ok := lookup(n); !ok {
			continue
		}
		w := n + " is not a latticed setting and is ignored"
		if s := closest(n, known); s != "" {
			w += "; did you mean " + s + "?"
		}
		out = append(out, w)
	}
	return out
}

// loadLabels merges labels per name: file, then WASMCLOUD_LABEL_* variables,
// then --label flags. Merging (rather than one source replacing the whole
// set) lets a deployment add a label without repeating the others.
func loadLabels(v *viper.Viper, fs *pflag.FlagSet, lookup func(string) (string, bool), names []string, path string, e *errs, warnings *[]string) map[string]string {
	env := EnvLabelPrefix + "{name}"
	labels := map[string]string{}
	if raw := v.Get("labels"); raw != nil {
		m, ok := raw.(map[string]any)
		if !ok {
			e.list = append(e.list, &SettingError{Env: env, Source: "labels in " + path, Msg: "expected a map of label names to values"})
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			s, msg := decode(kindString, m[k])
			if msg != "" {
				e.list = append(e.list, &SettingError{Env: env, Source: "labels in " + path, Msg: "label " + strconv.Quote(k) + ": " + msg})
				continue
			}
			labels[k] = s.(string)
		}
	}
	for _, n := range slices.Sorted(slices.Values(names)) {
		name, ok := strings.CutPrefix(n, EnvLabelPrefix)
		if !ok {
			continue
		}
		val, ok := lookup(n)
		if !ok {
			continue
		}
		if name == "" {
			*warnings = append(*warnings, n+" has no label name after the prefix and is ignored")
			continue
		}
		labels[strings.ToLower(name)] = val
	}
	if fs != nil {
		if f := fs.Lookup("label"); f != nil && f.Changed {
			kvs, err := fs.GetStringArray("label")
			if err != nil {
				e.list = append(e.list, &SettingError{Env: env, Source: "--label", Msg: err.Error()})
			}
			for _, kv := range kvs {
				k, val, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					e.list = append(e.list, &SettingError{Env: env, Source: "--label", Msg: strconv.Quote(kv) + ": expected key=value"})
					continue
				}
				labels[k] = val
			}
		}
	}
	return labels
}

// defaultDataDir follows the XDG base directory spec, which says a relative
// XDG_DATA_HOME is invalid and must be ignored. It returns nil when there is
// no home either, leaving Validate to ask for LATTICED_DATA_DIR.
func defaultDataDir(lookup func(string) (string, bool)) any {
	if x, ok := lookup(envXDGDataHome); ok && filepath.IsAbs(x) {
		return filepath.Join(x, "latticed")
	}
	if h, ok := lookup(envHome); ok && h != "" {
		return filepath.Join(h, ".local", "share", "latticed")
	}
	return nil
}

// DataDir is the data directory latticed uses given the environment:
// LATTICED_DATA_DIR, else the XDG default. Commands that need it without
// loading the whole configuration (claims sign) call this.
func DataDir(lookup func(string) (string, bool)) (string, error) {
	if d, ok := lookup(EnvDataDir); ok && d != "" {
		return filepath.Clean(d), nil
	}
	if d, ok := defaultDataDir(lookup).(string); ok {
		return d, nil
	}
	return "", fmt.Errorf("no data directory: set %s (neither XDG_DATA_HOME nor HOME is set)", EnvDataDir)
}

func normalizeLogLevel(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	switch l {
	case "trace":
		return "debug"
	case "warning":
		return "warn"
	}
	return l
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// decode turns a raw value (an env string, a value decoded from YAML or TOML,
// a flag value or a default) into the Go type of the kind. On failure it
// returns a message saying what was expected and what was given.
func decode(k kind, raw any) (any, string) {
	got := func() string { return fmt.Sprintf(", got %#v", raw) }
	switch k {
	case kindString:
		switch r := raw.(type) {
		case nil:
			return "", ""
		case string:
			return r, ""
		case bool, int, int64, uint64, float64:
			// YAML reads "lattice_prefix: 2024" as a number.
			return fmt.Sprint(r), ""
		}
		return nil, "expected a string" + got()
	case kindBool:
		switch r := raw.(type) {
		case nil:
			return false, ""
		case bool:
			return r, ""
		case string:
			if b, ok := parseBool(r); ok {
				return b, ""
			}
		case int, int64:
			// wasmCloud parsed WASMCLOUD_PROV_RPC_TLS as an integer.
			if n, _ := toInt(r); n == 0 || n == 1 {
				return n == 1, ""
			}
		}
		return nil, "expected a boolean: 1, true, yes, y, enabled, enable or 0, false, no, n, disabled, disable (any case), or empty" + got()
	case kindInt, kindUint32, kindMillis:
		n, ok := toInt(raw)
		if !ok {
			return nil, "expected a base-10 integer" + got()
		}
		switch k {
		case kindUint32:
			if n < 0 || n > math.MaxUint32 {
				return nil, fmt.Sprintf("%d: out of range 0-%d", n, uint32(math.MaxUint32))
			}
			return uint32(n), ""
		case kindMillis:
			if n > math.MaxInt64/int64(time.Millisecond) || n < math.MinInt64/int64(time.Millisecond) {
				return nil, fmt.Sprintf("%d: too many milliseconds", n)
			}
			return time.Duration(n) * time.Millisecond, ""
		}
		if n > math.MaxInt || n < math.MinInt {
			return nil, fmt.Sprintf("%d: too large", n)
		}
		return int(n), ""
	case kindDuration:
		switch r := raw.(type) {
		case time.Duration:
			return r, ""
		case string:
			if d, err := time.ParseDuration(strings.TrimSpace(r)); err == nil {
				return d, ""
			}
		}
		return nil, "expected a duration with a unit, such as 30s or 5m" + got()
	case kindList:
		switch r := raw.(type) {
		case nil:
			return []string(nil), ""
		case string:
			return splitList(strings.Split(r, ",")), ""
		case []string:
			return splitList(r), ""
		case []any:
			items := make([]string, 0, len(r))
			for i, x := range r {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Sprintf("entry %d: expected a string, got %#v", i+1, x)
				}
				items = append(items, s)
			}
			return splitList(items), ""
		}
		return nil, "expected a list or a comma-separated string" + got()
	}
	return nil, "unsupported setting kind" // a bug in the settings table
}

// splitList trims entries and drops empty ones, so "a, b," means [a b].
func splitList(items []string) []string {
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// toInt accepts the integer forms YAML, TOML, flags and env produce. Strings
// are base 10 only: "010" is ten, not eight.
func toInt(raw any) (int64, bool) {
	switch r := raw.(type) {
	case int:
		return int64(r), true
	case int32:
		return int64(r), true
	case int64:
		return r, true
	case uint32:
		return int64(r), true
	case uint64:
		if r > math.MaxInt64 {
			return 0, false
		}
		return int64(r), true
	case float64:
		if r == math.Trunc(r) && r >= math.MinInt64 && r < math.MaxInt64 {
			return int64(r), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(r), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// parseBool implements wasmCloud's boolean words. Unlike wasmCloud, which
// treats every unknown word as false, anything else is an error: "ture"
// silently meaning false is how a security setting goes wrong.
func parseBool(s string) (bool, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "TRUE", "YES", "Y", "ENABLED", "ENABLE":
		return true, true
	case "0", "FALSE", "NO", "N", "DISABLED", "DISABLE", "":
		return false, true
	}
	return false, false
}

// closest returns the candidate within edit distance 2 of s, for "did you
// mean" hints, or "" when none is that close.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
