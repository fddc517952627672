package perfsink_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	perfsink "github.com/perfsink/perfsink/go-shim"
)

func resolveK6(t *testing.T, arg, json string, env map[string]string) *perfsink.K6 {
	t.Helper()
	k, err := perfsink.ResolveK6(arg, []byte(json), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Free)
	return k
}

// The binding carries the engine's resolution: the three sources, the notes, the description
// and the push interval; errors keep their code and never show a secret.
func TestK6Resolve(t *testing.T) {
	k := resolveK6(t, "http://u:pw@127.0.0.1:1/argdb?consistency=all",
		`{"pushInterval":"3s"}`, map[string]string{"K6_INFLUXDB_DB": "envdb", "HOME": "/root"})
	if d := k.Describe(); d != "http://127.0.0.1:1, db argdb" {
		t.Errorf("Describe() = %q", d)
	}
	if n := k.Notes(); len(n) != 1 || !strings.Contains(n[0], "consistency") {
		t.Errorf("Notes() = %q", n)
	}
	if p := k.PushInterval(); p != 3*time.Second {
		t.Errorf("PushInterval() = %v", p)
	}
	_, err := perfsink.ResolveK6("http://u:topsecret@h:0/db", nil, nil)
	var pe *perfsink.Error
	if !errors.As(err, &pe) || pe.Code != perfsink.CodeConfig || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v", err)
	}
	// Without an argument the output was still asked for: k6's default address.
	if d := resolveK6(t, "", "", nil).Describe(); d != "http://localhost:8086, db k6" {
		t.Errorf("Describe() = %q", d)
	}
}

// The schema's answers as Go fields: typed tagsAsFields, metadata typed and filtered.
func TestK6SplitTagsAndMetadata(t *testing.T) {
	k := resolveK6(t, "", "", map[string]string{"K6_INFLUXDB_TAGS_AS_FIELDS": "vu,url,ok:bool,n:float"})
	kept, fields, err := k.SplitTags([]perfsink.Tag{{"method", "GET"}, {"n", "1.5"}, {"ok", "no"}, {"url", "u"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(kept) != "[{method GET}]" {
		t.Errorf("kept %v", kept)
	}
	if got := describeFields(fields); got != "n:float=1.5 ok:string=no url:string=u" {
		t.Errorf("fields %s", got)
	}
	md := []perfsink.Tag{{"iter", "7"}, {"url", "x"}, {"value", "1"}, {"vu", "x2"}, {"zone", "a"}}
	out, err := k.MetadataFields(nil, md, []perfsink.Tag{{Key: "url"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := describeFields(out); got != "iter:int=7 vu:string=x2 zone:string=a" {
		t.Errorf("metadata fields %s", got)
	}
	if _, _, err := k.SplitTags([]perfsink.Tag{{"k", "\xff"}}); err == nil {
		t.Error("a tag value that is not UTF-8 was accepted")
	}
	// Asked once per k6 request: it must not allocate (its C memory is reused).
	dst := make([]perfsink.Field, 0, 8)
	md = md[:1]
	if n := testing.AllocsPerRun(100, func() { dst, _ = k.MetadataFields(dst[:0], md, nil) }); n != 0 {
		t.Errorf("MetadataFields allocates %v times a call", n)
	}
}

func describeFields(fs []perfsink.Field) string {
	var parts []string
	for _, f := range fs {
		var v string
		switch f.Type() {
		case perfsink.FieldInt:
			v = "int"
		case perfsink.FieldFloat:
			v = "float"
		case perfsink.FieldBool:
			v = "bool"
		default:
			v = "string"
		}
		parts = append(parts, f.Key()+":"+v+"="+perfsink.FieldValueString(f))
	}
	return strings.Join(parts, " ")
}
