package perfsink

/*
#include <stdlib.h>
#include "perfsink.h"
*/
import "C"

import (
	"runtime"
	"sort"
	"strings"
	"time"
	"unsafe"
)

// K6 is the engine's k6 rules for a k6 output (the C type perfsink_k6): the configuration
// resolved from k6's sources (the --out argument, the config file's collectors.perfsink,
// K6_INFLUXDB_*, INFLUXDB_* and PERFSINK_* variables) and k6's schema (tagsAsFields and its
// typing, vu/iter metadata). The rules are the engine's, the same for `perfsink k6`; this
// type only carries the questions across cgo, once per tag set or metadata map, never per
// sample.
//
// SplitTags and MetadataFields reuse C memory of the K6: they are not safe for concurrent
// use (a k6 output asks from its one goroutine). The other methods are.
type K6 struct {
	ptr     *C.perfsink_k6
	scratch *k6Scratch
	cleanup runtime.Cleanup
}

// k6Scratch is the C memory the questions are asked in: no Go pointer crosses cgo.
type k6Scratch struct {
	mem    arena
	err    *C.char        // errLen bytes
	tags   unsafe.Pointer // tagCap C.perfsink_tag
	tagCap int
}

// ResolveK6 resolves k6's configuration: arg is the text after `--out perfsink=` (k6's
// output.Params.ConfigArgument), jsonConfig the config file's collectors.perfsink (nil:
// none), env the environment as k6 sees it. The error names what is wrong, never a secret.
func ResolveK6(arg string, jsonConfig []byte, env map[string]string) (*K6, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var envText strings.Builder
	for _, k := range keys {
		envText.WriteString(k)
		envText.WriteByte('=')
		envText.WriteString(env[k])
		envText.WriteByte(0)
	}
	p, err := cK6Resolve(arg, jsonConfig, envText.String())
	if err != nil {
		return nil, err
	}
	k := &K6{ptr: p, scratch: new(k6Scratch)}
	k.cleanup = runtime.AddCleanup(k, freeK6, k6Leak{p, k.scratch})
	return k, nil
}

type k6Leak struct {
	p       *C.perfsink_k6
	scratch *k6Scratch
}

func freeK6(l k6Leak) {
	cK6Free(l.p)
	l.scratch.free()
}

// Free releases the K6; it must not be used afterwards. Sinks it opened stay open.
func (k *K6) Free() {
	if k.ptr == nil {
		return
	}
	k.cleanup.Stop()
	freeK6(k6Leak{k.ptr, k.scratch})
	k.ptr, k.scratch = nil, nil
}

// OpenSink opens a sink with the resolved configuration.
func (k *K6) OpenSink() (*Sink, error) {
	defer runtime.KeepAlive(k)
	return newSink(cK6OpenSink(k.ptr))
}

// Describe is where points go, for humans ("http://host:8086, db k6"; never credentials).
func (k *K6) Describe() string {
	defer runtime.KeepAlive(k)
	return cK6Describe(k.ptr)
}

// Notes are settings the resolution accepted but ignores or adjusted, for the user.
func (k *K6) Notes() []string {
	defer runtime.KeepAlive(k)
	return cK6Notes(k.ptr)
}

// PushInterval is how often the engine sends (k6's pushInterval).
func (k *K6) PushInterval() time.Duration {
	defer runtime.KeepAlive(k)
	return time.Duration(cK6PushIntervalMs(k.ptr)) * time.Millisecond
}

// SplitTags applies tagsAsFields to a tag set: it returns the tags that stay tags (register
// the series with them) and the typed fields the others become. Pass the tags sorted by key:
// the fields keep their order, which is the order `perfsink k6` writes them in.
func (k *K6) SplitTags(tags []Tag) (kept []Tag, fields []Field, err error) {
	out, ctags := k.scratch.ask(tags)
	err = cK6SplitTags(k.ptr, ctags, out, k.scratch.errBuf())
	runtime.KeepAlive(k)
	if err != nil {
		return nil, nil, err
	}
	for i := range out {
		if f, ok := k6Field(&out[i], tags[i].Key, tags[i].Value); ok {
			fields = append(fields, f)
		} else {
			kept = append(kept, tags[i])
		}
	}
	return kept, fields, nil
}

// MetadataFields appends to dst the fields a sample's metadata (k6: vu, iter, ...) becomes,
// beside tagFields, the keys of the fields its tag set wrote (from SplitTags). Pass the
// entries sorted by key, for `perfsink k6`'s order. It allocates nothing once its C memory
// has grown to the sizes asked; ask once per metadata map, not per sample.
func (k *K6) MetadataFields(dst []Field, md []Tag, tagFields []Tag) ([]Field, error) {
	out, ctags := k.scratch.ask(md, tagFields...)
	err := cK6MetadataFields(k.ptr, ctags[:len(md)], ctags[len(md):], out, k.scratch.errBuf())
	runtime.KeepAlive(k)
	if err != nil {
		return dst, err
	}
	for i := range out {
		if f, ok := k6Field(&out[i], md[i].Key, md[i].Value); ok {
			dst = append(dst, f)
		}
	}
	return dst, nil
}

// k6Field is the field the engine made of entry (key, value): a string field's value is the
// entry's own Go string (the engine's points at its C copy).
func k6Field(f *C.perfsink_field, key, value string) (Field, bool) {
	switch f.kind {
	case C.PERFSINK_K6_NOT_A_FIELD:
		return Field{}, false
	case C.PERFSINK_FIELD_FLOAT:
		return Float(key, float64(f.float_value)), true
	case C.PERFSINK_FIELD_INT:
		return Int(key, int64(f.int_value)), true
	case C.PERFSINK_FIELD_BOOL:
		return Bool(key, f.bool_value != 0), true
	}
	return String(key, value), true
}

// ask copies entries (and then more, whose values are not read) into C memory and returns
// the tag array and an output field array of len(entries).
func (s *k6Scratch) ask(entries []Tag, more ...Tag) (out []C.perfsink_field, tags []C.perfsink_tag) {
	s.mem.reset()
	n := len(entries) + len(more)
	if n > s.tagCap {
		C.free(s.tags)
		s.tagCap = max(n, 16)
		s.tags = cmalloc(s.tagCap * C.sizeof_perfsink_tag)
	}
	tags = unsafe.Slice((*C.perfsink_tag)(s.tags), s.tagCap)[:n:n]
	for i := range n {
		var t *Tag
		if i < len(entries) {
			t = &entries[i]
		} else {
			t = &more[i-len(entries)]
		}
		tags[i] = C.perfsink_tag{
			key: s.mem.str(t.Key), key_len: C.size_t(len(t.Key)),
			value: s.mem.str(t.Value), value_len: C.size_t(len(t.Value)),
		}
	}
	if len(entries) > 0 {
		out = s.mem.fields(len(entries))
	}
	return out, tags
}

// errBuf is the calls' message buffer.
func (s *k6Scratch) errBuf() *C.char {
	if s.err == nil {
		s.err = (*C.char)(cmalloc(errLen))
	}
	return s.err
}

func (s *k6Scratch) free() {
	s.mem.free()
	C.free(s.tags)
	C.free(unsafe.Pointer(s.err))
	s.tags, s.tagCap, s.err = nil, 0, nil
}
