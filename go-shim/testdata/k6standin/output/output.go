// Package output stands in for go.k6.io/k6/output (k6 v1.1.0 output/types.go, extensions.go).
package output

import (
	"encoding/json"

	"go.k6.io/k6/ext"
	"go.k6.io/k6/metrics"
)

// Output is what k6 drives: Start, AddMetricSamples every 50 ms from one goroutine (never
// concurrently; must not block), then Stop.
type Output interface {
	Description() string
	Start() error
	AddMetricSamples(samples []metrics.SampleContainer)
	Stop() error
}

// Params are what k6 hands a constructor. Only the fields perfsink reads are declared.
// In k6, Logger is a logrus.FieldLogger; the stand-in declares the subset of its methods
// perfsink calls (identical signatures), so the same glue compiles against both.
type Params struct {
	OutputType     string          // the part of --out before '='
	ConfigArgument string          // the part of --out after '='
	JSONConfig     json.RawMessage // the config file's collectors[OutputType]
	Logger         FieldLogger
	Environment    map[string]string
}

// FieldLogger is the part of logrus.FieldLogger that perfsink uses.
type FieldLogger interface {
	Debugf(format string, args ...interface{})
	Infof(format string, args ...interface{})
	Warnf(format string, args ...interface{})
	Errorf(format string, args ...interface{})
}

// Constructor builds an output.
type Constructor func(Params) (Output, error)

// RegisterExtension registers an output constructor under name (ext.Register with
// ext.OutputExtension).
func RegisterExtension(name string, c Constructor) {
	ext.Register(name, ext.OutputExtension, c)
}
