package k6output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the resolved configuration of the output.
type Config struct {
	// Engine is the engine configuration (INFLUXDB_*/PERFSINK_* keys) for perfsink.Open.
	Engine map[string]string
	// TagsAsFields are the tags written as typed fields instead of tags.
	TagsAsFields []TagField
	// Warnings are settings that were accepted but have no effect here.
	Warnings []string
}

// TagField is a tagsAsFields entry: `name[:int|float|bool|string]`.
type TagField struct {
	Name string
	Type FieldType
	// Typed is true when the entry named its type (so it also applies to metadata).
	Typed bool
}

// FieldType is the type of a tagsAsFields field.
type FieldType uint8

const (
	TypeString FieldType = iota
	TypeInt
	TypeFloat
	TypeBool
)

func (t FieldType) String() string {
	return [...]string{"string", "int", "float", "bool"}[t]
}

// DefaultTagsAsFields is k6's default for its influxdb output.
const DefaultTagsAsFields = "vu,iter,url"

// engineKeys are the engine's INFLUXDB_* keys; the other INFLUXDB_* variables of an
// environment belong to influxd and are ignored, as the engine itself does.
var engineKeys = map[string]bool{
	"INFLUXDB_URL": true, "INFLUXDB_DB": true, "INFLUXDB_RP": true,
	"INFLUXDB_USERNAME": true, "INFLUXDB_PASSWORD": true, "INFLUXDB_TOKEN": true,
	"INFLUXDB_ORG": true, "INFLUXDB_BUCKET": true, "INFLUXDB_PRECISION": true,
	"INFLUXDB_INSECURE_SKIP_VERIFY": true, "INFLUXDB_CA_FILE": true,
}

func isEngineKey(k string) bool { return engineKeys[k] || strings.HasPrefix(k, "PERFSINK_") }

// k6Keys maps k6's JSON option names (built-in influxdb output and xk6-output-influxdb) to
// their K6_INFLUXDB_* variables.
var k6Keys = map[string]string{
	"addr": "ADDR", "proxy": "PROXY", "username": "USERNAME", "password": "PASSWORD",
	"insecure": "INSECURE", "payloadSize": "PAYLOAD_SIZE", "pushInterval": "PUSH_INTERVAL",
	"concurrentWrites": "CONCURRENT_WRITES", "db": "DB", "precision": "PRECISION",
	"retention": "RETENTION", "consistency": "CONSISTENCY", "tagsAsFields": "TAGS_AS_FIELDS",
	"token": "TOKEN", "organization": "ORGANIZATION", "bucket": "BUCKET",
	"insecureSkipTLSVerify": "INSECURE",
}

// urlQueryKeys are the query keys k6 accepts in `--out influxdb=URL`.
var urlQueryKeys = map[string]string{
	"insecure": "insecure", "payload_size": "payloadSize", "precision": "precision",
	"retention": "retention", "consistency": "consistency", "pushInterval": "pushInterval",
	"concurrentWrites": "concurrentWrites", "tagsAsFields": "tagsAsFields",
}

// layer is one source of settings: k6-style options by JSON name, and engine keys.
type layer struct {
	k6     map[string]string
	engine map[string]string
}

func newLayer() layer { return layer{k6: map[string]string{}, engine: map[string]string{}} }

// ParseConfig resolves the configuration from k6's sources. Precedence, lowest first:
//
//  1. k6-style options (the names of k6's influxdb output): defaults < JSON config
//     (collectors.perfsink) < K6_INFLUXDB_* variables < the --out argument;
//  2. engine keys (INFLUXDB_*, PERFSINK_*): JSON config < environment < the --out argument;
//     they win over anything derived from k6-style options.
//
// The --out argument is either a k6-style URL (`http://user:pass@host:8086/db?precision=ms`)
// or `KEY=value;...` with engine keys and K6_INFLUXDB_* names.
func ParseConfig(arg string, jsonConfig []byte, env map[string]string) (Config, error) {
	var layers []layer

	jl, err := jsonLayer(jsonConfig)
	if err != nil {
		return Config{}, err
	}
	layers = append(layers, jl)

	el := newLayer()
	for k, v := range env {
		switch {
		case strings.HasPrefix(k, "K6_INFLUXDB_"):
			if name := k6NameOfEnv(k); name != "" {
				el.k6[name] = v
			}
		case isEngineKey(k):
			el.engine[k] = v
		}
	}
	layers = append(layers, el)

	al, err := argLayer(arg)
	if err != nil {
		return Config{}, err
	}
	layers = append(layers, al)

	k6 := map[string]string{"addr": "http://localhost:8086", "tagsAsFields": DefaultTagsAsFields}
	engine := map[string]string{}
	for _, l := range layers {
		for k, v := range l.k6 {
			k6[k] = v
		}
		splitURLPath(l.engine)
		for k, v := range l.engine {
			engine[k] = v
		}
	}

	cfg := Config{Engine: map[string]string{}}
	if err := cfg.fromK6(k6); err != nil {
		return Config{}, err
	}
	for k, v := range engine {
		cfg.Engine[k] = v
	}
	return cfg, nil
}

// k6NameOfEnv maps K6_INFLUXDB_PUSH_INTERVAL to pushInterval ("" for a variable that is not
// an option of an influxdb output).
func k6NameOfEnv(env string) string {
	suffix := strings.TrimPrefix(env, "K6_INFLUXDB_")
	names := make([]string, 0, 2)
	for name, s := range k6Keys {
		if s == suffix {
			names = append(names, name)
		}
	}
	sort.Strings(names) // INSECURE has two JSON spellings; "insecure" sorts first
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func jsonLayer(raw []byte) (layer, error) {
	l := newLayer()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return l, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return l, fmt.Errorf("perfsink: the JSON config must be an object: %w", err)
	}
	for k, v := range obj {
		if _, ok := k6Keys[k]; !ok && !isEngineKey(k) {
			return l, fmt.Errorf("perfsink: unknown JSON config key %q (k6 influxdb option names, INFLUXDB_* or PERFSINK_* keys)", k)
		}
		s, err := jsonScalar(k, v)
		if err != nil {
			return l, err
		}
		switch {
		case isEngineKey(k):
			l.engine[k] = s
		case k == "insecureSkipTLSVerify": // xk6-output-influxdb's name
			l.k6["insecure"] = s
		default:
			l.k6[k] = s
		}
	}
	return l, nil
}

// jsonScalar renders a JSON value as the string the option parsers read: strings as they
// are, numbers and booleans as written, arrays of strings (tagsAsFields) joined with ','.
// A pushInterval number is milliseconds, as k6 reads a duration number.
func jsonScalar(key string, v json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return strings.Join(list, ","), nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		if key == "pushInterval" {
			return n.String() + "ms", nil
		}
		return n.String(), nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return strconv.FormatBool(b), nil
	}
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return "", nil
	}
	return "", fmt.Errorf("perfsink: JSON config key %q: expected a string, number, boolean or list of strings", key)
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

func argLayer(arg string) (layer, error) {
	l := newLayer()
	arg = strings.TrimSpace(arg)
	switch {
	case arg == "":
		return l, nil
	case schemeRE.MatchString(arg):
		return l, parseK6URL(arg, l.k6)
	}
	for i, entry := range splitKV(arg) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return l, fmt.Errorf("perfsink: entry %d of the --out argument is not KEY=value", i+1)
		}
		switch {
		case isEngineKey(k):
			l.engine[k] = v
		case strings.HasPrefix(k, "K6_INFLUXDB_") && k6NameOfEnv(k) != "":
			l.k6[k6NameOfEnv(k)] = v
		default:
			return l, fmt.Errorf("perfsink: unknown key %q in the --out argument (INFLUXDB_*, PERFSINK_* or K6_INFLUXDB_* names, or a URL)", k)
		}
	}
	return l, nil
}

// splitKV splits at ';' not escaped by '\' and resolves `\;` and `\\`, like the engine.
func splitKV(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == ';' || s[i+1] == '\\'):
			cur.WriteByte(s[i+1])
			i++
		case c == ';':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// parseK6URL reads k6's `http[s]://[user:pass@]host:port/DB?query` into k6-style options.
func parseK6URL(raw string, into map[string]string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("perfsink: invalid URL in the --out argument: %w", redact(err))
	}
	if u.Scheme == "udp" {
		return fmt.Errorf("perfsink: UDP is not supported; use http:// or https://")
	}
	if u.User != nil {
		into["username"] = u.User.Username()
		if p, ok := u.User.Password(); ok {
			into["password"] = p
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		into["db"] = db
	}
	into["addr"] = u.Scheme + "://" + u.Host
	for k, vs := range u.Query() {
		name, ok := urlQueryKeys[k]
		if !ok {
			return fmt.Errorf("perfsink: unknown query key %q in the --out URL", k)
		}
		into[name] = strings.Join(vs, ",")
	}
	return nil
}

// redact drops the URL text (it may hold a password) from a url.Parse error.
func redact(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// splitURLPath turns an INFLUXDB_URL with a database path into INFLUXDB_URL + INFLUXDB_DB
// within one layer (unless the layer names INFLUXDB_DB itself), so that a URL of a higher
// layer and a database of a lower one combine key by key.
func splitURLPath(engine map[string]string) {
	raw, ok := engine["INFLUXDB_URL"]
	if !ok || raw == "" {
		return
	}
	if _, hasDB := engine["INFLUXDB_DB"]; hasDB {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return // the engine reports what is wrong with it
	}
	if db := strings.Trim(u.Path, "/"); db != "" && !strings.Contains(db, "/") {
		engine["INFLUXDB_URL"] = u.Scheme + "://" + u.Host
		engine["INFLUXDB_DB"] = db
	}
}

// fromK6 maps k6-style options to engine keys and tagsAsFields.
func (c *Config) fromK6(o map[string]string) error {
	set := func(key, v string) {
		if v != "" {
			c.Engine[key] = v
		}
	}
	if addr := o["addr"]; addr != "" {
		u, err := url.Parse(addr)
		if err != nil {
			return fmt.Errorf("perfsink: invalid addr: %w", redact(err))
		}
		if u.Scheme == "udp" {
			return fmt.Errorf("perfsink: UDP is not supported; use http:// or https://")
		}
		if u.User != nil {
			if _, ok := o["username"]; !ok {
				o["username"] = u.User.Username()
			}
			if p, ok := u.User.Password(); ok && o["password"] == "" {
				o["password"] = p
			}
		}
		if db := strings.Trim(u.Path, "/"); db != "" && o["db"] == "" {
			o["db"] = db
		}
		set("INFLUXDB_URL", u.Scheme+"://"+u.Host)
	}
	set("INFLUXDB_DB", o["db"])
	set("INFLUXDB_RP", o["retention"])
	set("INFLUXDB_USERNAME", o["username"])
	set("INFLUXDB_PASSWORD", o["password"])
	set("INFLUXDB_TOKEN", o["token"])
	set("INFLUXDB_ORG", o["organization"])
	set("INFLUXDB_BUCKET", o["bucket"])
	if v := o["insecure"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("perfsink: insecure: %q is not a boolean", v)
		}
		c.Engine["INFLUXDB_INSECURE_SKIP_VERIFY"] = strconv.FormatBool(b)
	}
	if v := o["precision"]; v != "" {
		p, err := precision(v)
		if err != nil {
			return err
		}
		c.Engine["INFLUXDB_PRECISION"] = p
	}
	if v := o["pushInterval"]; v != "" {
		d, err := duration(v)
		if err != nil {
			return fmt.Errorf("perfsink: pushInterval: %w", err)
		}
		c.Engine["PERFSINK_FLUSH_INTERVAL_MS"] = strconv.FormatInt(max(d.Milliseconds(), 1), 10)
	}
	if v := o["concurrentWrites"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("perfsink: concurrentWrites: %q must be a positive integer", v)
		}
		c.Engine["PERFSINK_CONCURRENCY"] = strconv.Itoa(n)
	}
	if v := o["proxy"]; v != "" {
		return fmt.Errorf("perfsink: an HTTP proxy (proxy, K6_INFLUXDB_PROXY) is not supported")
	}
	if o["consistency"] != "" {
		c.Warnings = append(c.Warnings, "consistency is ignored (InfluxDB Enterprise only)")
	}
	if o["payloadSize"] != "" {
		c.Warnings = append(c.Warnings, "payloadSize is ignored (UDP only)")
	}
	tf, err := ParseTagsAsFields(o["tagsAsFields"])
	if err != nil {
		return err
	}
	c.TagsAsFields = tf
	return nil
}

// precision maps k6's precision spellings to the engine's ns, ms or s.
func precision(v string) (string, error) {
	switch strings.TrimSpace(v) {
	case "ns", "n", "1ns":
		return "ns", nil
	case "ms", "1ms":
		return "ms", nil
	case "s", "1s":
		return "s", nil
	}
	return "", fmt.Errorf("perfsink: precision %q is not supported; use ns, ms or s", v)
}

// duration reads k6's duration forms: a Go duration ("1s", "500ms") or a number of
// milliseconds.
func duration(v string) (time.Duration, error) {
	if ms, err := strconv.ParseFloat(v, 64); err == nil {
		if ms <= 0 {
			return 0, fmt.Errorf("%q must be positive", v)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", v)
	}
	return d, nil
}

// ParseTagsAsFields reads `name[:int|float|bool|string],...`.
func ParseTagsAsFields(v string) ([]TagField, error) {
	var out []TagField
	seen := map[string]bool{}
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, typ, typed := strings.Cut(entry, ":")
		name = strings.TrimSpace(name)
		f := TagField{Name: name, Typed: typed}
		switch strings.TrimSpace(typ) {
		case "", "string":
			f.Type = TypeString
		case "int":
			f.Type = TypeInt
		case "float":
			f.Type = TypeFloat
		case "bool":
			f.Type = TypeBool
		default:
			return nil, fmt.Errorf("perfsink: tagsAsFields: invalid type %q for %q (int, float, bool or string)", typ, name)
		}
		if name == "" {
			return nil, fmt.Errorf("perfsink: tagsAsFields: empty name in %q", entry)
		}
		if name == "value" {
			return nil, fmt.Errorf("perfsink: tagsAsFields: %q would collide with the value field", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("perfsink: tagsAsFields: %q is listed twice", name)
		}
		seen[name] = true
		out = append(out, f)
	}
	return out, nil
}

// Describe is the configuration for humans: URL and database, never credentials.
func (c Config) Describe() string {
	u := c.Engine["INFLUXDB_URL"]
	if u == "" {
		return "disabled (INFLUXDB_URL is empty)"
	}
	if pu, err := url.Parse(u); err == nil {
		pu.User = nil
		pu.RawQuery = ""
		u = pu.String()
	}
	switch {
	case c.Engine["INFLUXDB_BUCKET"] != "":
		return u + ", bucket " + c.Engine["INFLUXDB_BUCKET"]
	case c.Engine["INFLUXDB_DB"] != "":
		return u + ", db " + c.Engine["INFLUXDB_DB"]
	}
	return u + ", db k6"
}
