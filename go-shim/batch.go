package perfsink

/*
#include <stdlib.h>
#include "perfsink.h"
*/
import "C"

import (
	"math"
	"runtime"
	"time"
	"unsafe"
)

// FieldType is the type of a field value.
type FieldType uint8

const (
	FieldFloat  FieldType = C.PERFSINK_FIELD_FLOAT
	FieldInt    FieldType = C.PERFSINK_FIELD_INT
	FieldUint   FieldType = C.PERFSINK_FIELD_UINT
	FieldBool   FieldType = C.PERFSINK_FIELD_BOOL
	FieldString FieldType = C.PERFSINK_FIELD_STRING
)

// Field is a typed field of a point; make one with Float, Int, Uint, Bool or String.
type Field struct {
	key  string
	str  string
	bits uint64 // the float's bits, the int, the uint, or the bool (0/1)
	typ  FieldType
}

func Float(key string, v float64) Field {
	return Field{key: key, typ: FieldFloat, bits: math.Float64bits(v)}
}
func Int(key string, v int64) Field   { return Field{key: key, typ: FieldInt, bits: uint64(v)} }
func Uint(key string, v uint64) Field { return Field{key: key, typ: FieldUint, bits: v} }
func String(key, v string) Field      { return Field{key: key, typ: FieldString, str: v} }
func Bool(key string, v bool) Field {
	f := Field{key: key, typ: FieldBool}
	if v {
		f.bits = 1
	}
	return f
}

func (f Field) Key() string     { return f.key }
func (f Field) Type() FieldType { return f.typ }

// c is the C form of f with the given C views of its key and string value.
func (f *Field) c(key, str *C.char) C.perfsink_field {
	out := C.perfsink_field{key: key, key_len: C.size_t(len(f.key)), kind: C.uint32_t(f.typ)}
	switch f.typ {
	case FieldFloat:
		out.float_value = C.double(math.Float64frombits(f.bits))
	case FieldInt:
		out.int_value = C.int64_t(f.bits)
	case FieldUint:
		out.uint_value = C.uint64_t(f.bits)
	case FieldBool:
		out.bool_value = C.uint8_t(f.bits)
	case FieldString:
		out.string_value, out.string_len = str, C.size_t(len(f.str))
	}
	return out
}

// Point is a point of a registered series: the value (written to the series' value field),
// extra fields, and the time (zero: now).
type Point struct {
	Series SeriesID
	Value  float64
	Time   time.Time
	// Shared holds fields that many points repeat (k6: a tag set's tagsAsFields). It is
	// copied by reference, so building it once saves converting those fields per point.
	Shared *FieldSet
	Fields []Field
}

// Batch gathers points for SubmitBatch: one cgo call for all of them. The points are
// C-layout structs in C memory that the Batch owns and reuses, and so is everything they
// point to (field arrays, copies of keys and string values): no Go pointer is ever passed to
// or stored in C, and cgo has nothing to check per point. A Batch is not safe for
// concurrent use.
type Batch struct {
	pts  []C.perfsink_point // a view of mem.points
	mem  *arena
	keep []*FieldSet // field sets the points refer to, alive until the batch is submitted
}

// NewBatch returns an empty batch. Its C memory is freed by Free or by the garbage collector.
func NewBatch() *Batch {
	b := &Batch{mem: new(arena)}
	runtime.AddCleanup(b, (*arena).free, b.mem)
	return b
}

// Len is the number of points in the batch.
func (b *Batch) Len() int { return len(b.pts) }

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() {
	b.pts = b.pts[:0]
	b.mem.reset()
	clear(b.keep)
	b.keep = b.keep[:0]
}

// Add appends a point.
func (b *Batch) Add(p Point) {
	ts := p.Time.UnixNano()
	if p.Time.IsZero() {
		ts = time.Now().UnixNano()
	}
	var shared []C.perfsink_field
	if p.Shared != nil && len(p.Shared.fields) > 0 {
		shared = p.Shared.fields
		if n := len(b.keep); n == 0 || b.keep[n-1] != p.Shared {
			b.keep = append(b.keep, p.Shared)
		}
	}
	var fields *C.perfsink_field
	switch {
	case len(p.Fields) == 0 && len(shared) == 0:
	case len(p.Fields) == 0:
		fields = &shared[0]
	default:
		dst := b.mem.fields(len(shared) + len(p.Fields))
		copy(dst, shared)
		for i := range p.Fields {
			f := &p.Fields[i]
			dst[len(shared)+i] = f.c(b.mem.str(f.key), b.mem.str(f.str))
		}
		fields = &dst[0]
	}
	if len(b.pts) == cap(b.pts) {
		b.pts = b.mem.growPoints(b.pts)
	}
	b.pts = b.pts[:len(b.pts)+1]
	b.pts[len(b.pts)-1] = C.perfsink_point{
		series:       C.uint32_t(p.Series),
		field_count:  C.uint32_t(len(shared) + len(p.Fields)),
		fields:       fields,
		value:        C.double(p.Value),
		timestamp_ns: C.int64_t(ts),
	}
}

// AddShared appends a point whose extra fields are only those of shared (nil: none), with
// its time in ns since the epoch: Add for the hot path, without per-point fields.
func (b *Batch) AddShared(series SeriesID, value float64, unixNano int64, shared *FieldSet) {
	var fields *C.perfsink_field
	n := 0
	if shared != nil && len(shared.fields) > 0 {
		fields, n = &shared.fields[0], len(shared.fields)
		if k := len(b.keep); k == 0 || b.keep[k-1] != shared {
			b.keep = append(b.keep, shared)
		}
	}
	if len(b.pts) == cap(b.pts) {
		b.pts = b.mem.growPoints(b.pts)
	}
	b.pts = b.pts[:len(b.pts)+1]
	b.pts[len(b.pts)-1] = C.perfsink_point{
		series:       C.uint32_t(series),
		field_count:  C.uint32_t(n),
		fields:       fields,
		value:        C.double(value),
		timestamp_ns: C.int64_t(unixNano),
	}
}

// AddRepeat appends a point with the same extra fields as the point added last, by reference
// (the engine then reads and encodes them once for both). It returns false, adding nothing,
// when the batch is empty.
func (b *Batch) AddRepeat(series SeriesID, value float64, unixNano int64) bool {
	if len(b.pts) == 0 {
		return false
	}
	last := b.pts[len(b.pts)-1]
	if len(b.pts) == cap(b.pts) {
		b.pts = b.mem.growPoints(b.pts)
	}
	b.pts = b.pts[:len(b.pts)+1]
	b.pts[len(b.pts)-1] = C.perfsink_point{
		series:       C.uint32_t(series),
		field_count:  last.field_count,
		fields:       last.fields,
		value:        C.double(value),
		timestamp_ns: C.int64_t(unixNano),
	}
	return true
}

// Free releases the batch's C memory now; the batch must not be used afterwards.
func (b *Batch) Free() {
	b.Reset()
	b.mem.free()
	b.pts = nil
}

// FieldSet is a fixed set of fields converted to C once, for points that repeat them.
type FieldSet struct {
	fields []C.perfsink_field
	mem    *arena
}

// NewFieldSet converts fields once; its C memory is freed when the set is unreachable.
func NewFieldSet(fields ...Field) *FieldSet {
	fs := &FieldSet{mem: new(arena)}
	if len(fields) == 0 {
		return fs
	}
	runtime.AddCleanup(fs, (*arena).free, fs.mem)
	size := 0
	for i := range fields {
		size += len(fields[i].key) + len(fields[i].str)
	}
	fs.mem.minBytes, fs.mem.minFields = size, len(fields)
	fs.fields = fs.mem.fields(len(fields))
	for i := range fields {
		f := &fields[i]
		fs.fields[i] = f.c(fs.mem.str(f.key), fs.mem.str(f.str))
	}
	return fs
}

// Len is the number of fields in the set.
func (fs *FieldSet) Len() int { return len(fs.fields) }

// arena is C memory handed out in blocks that never move, so a pointer into it stays valid
// until reset or free.
type arena struct {
	points      unsafe.Pointer // the point array (reallocated as it grows; nothing points into it)
	out         *submitOut     // the outputs of perfsink_sink_submit (allocated once)
	fieldBlocks [][]C.perfsink_field
	fb, fn      int // current field block, fields used in it
	byteBlocks  [][]byte
	bb, bn      int
	// Block sizes (0: the defaults).
	minFields, minBytes int
}

const (
	defaultFieldBlock = 4096     // fields (64 B each)
	defaultByteBlock  = 64 << 10 // bytes
)

// fields returns n contiguous fields.
func (a *arena) fields(n int) []C.perfsink_field {
	for ; a.fb < len(a.fieldBlocks); a.fb, a.fn = a.fb+1, 0 {
		if blk := a.fieldBlocks[a.fb]; a.fn+n <= len(blk) {
			a.fn += n
			return blk[a.fn-n : a.fn : a.fn]
		}
	}
	size := max(n, a.minFields)
	if a.minFields == 0 {
		size = max(n, defaultFieldBlock)
	}
	blk := unsafe.Slice((*C.perfsink_field)(cmalloc(size*C.sizeof_perfsink_field)), size)
	a.fieldBlocks = append(a.fieldBlocks, blk)
	a.fb, a.fn = len(a.fieldBlocks)-1, n
	return blk[:n:n]
}

// str copies s into C memory.
func (a *arena) str(s string) *C.char {
	n := len(s)
	if n == 0 {
		return nil
	}
	for ; a.bb < len(a.byteBlocks); a.bb, a.bn = a.bb+1, 0 {
		if blk := a.byteBlocks[a.bb]; a.bn+n <= len(blk) {
			p := &blk[a.bn]
			copy(blk[a.bn:], s)
			a.bn += n
			return (*C.char)(unsafe.Pointer(p))
		}
	}
	size := max(n, a.minBytes)
	if a.minBytes == 0 {
		size = max(n, defaultByteBlock)
	}
	blk := unsafe.Slice((*byte)(cmalloc(size)), size)
	copy(blk, s)
	a.byteBlocks = append(a.byteBlocks, blk)
	a.bb, a.bn = len(a.byteBlocks)-1, n
	return (*C.char)(unsafe.Pointer(&blk[0]))
}

// submitOut is the batch's place for perfsink_sink_submit's outputs.
func (a *arena) submitOut() *submitOut {
	if a.out == nil {
		a.out = (*submitOut)(cmalloc(int(unsafe.Sizeof(submitOut{}))))
	}
	return a.out
}

// growPoints returns pts (a view of a.points) with room for more points.
func (a *arena) growPoints(pts []C.perfsink_point) []C.perfsink_point {
	n := max(2*cap(pts), 1024)
	p := C.realloc(a.points, C.size_t(n)*C.sizeof_perfsink_point)
	if p == nil {
		panic("perfsink: out of C memory")
	}
	a.points = p
	return unsafe.Slice((*C.perfsink_point)(p), n)[:len(pts)]
}

func (a *arena) reset() { a.fb, a.fn, a.bb, a.bn = 0, 0, 0, 0 }

func (a *arena) free() {
	C.free(a.points)
	C.free(unsafe.Pointer(a.out))
	for _, blk := range a.fieldBlocks {
		C.free(unsafe.Pointer(&blk[0]))
	}
	for _, blk := range a.byteBlocks {
		C.free(unsafe.Pointer(&blk[0]))
	}
	*a = arena{}
}

func cmalloc(n int) unsafe.Pointer {
	p := C.malloc(C.size_t(n))
	if p == nil {
		panic("perfsink: out of C memory")
	}
	return p
}
