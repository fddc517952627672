package perfsink

import (
	"math"
	"strconv"
)

// LeakedClosed is the number of sinks the garbage collector has closed.
func LeakedClosed() int64 { return leakedClosed.Load() }

// FieldValueString is a field's value as text (tests compare fields with it).
func FieldValueString(f Field) string {
	switch f.typ {
	case FieldFloat:
		return strconv.FormatFloat(math.Float64frombits(f.bits), 'g', -1, 64)
	case FieldInt:
		return strconv.FormatInt(int64(f.bits), 10)
	case FieldUint:
		return strconv.FormatUint(f.bits, 10)
	case FieldBool:
		return strconv.FormatBool(f.bits != 0)
	}
	return f.str
}
