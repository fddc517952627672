// Package output stands in for go.k6.io/k6/output (k6 v1.1.0 output/types.go, extensions.go).
package output

import (
	"encoding/json"

	"github.com/sirupsen/logrus"

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

// Params are what k6 hands a constructor. Only the fields perfsink and its tests use are
// declared, each with k6's type (k6 also has StdOut, StdErr, FS, ScriptPath, ScriptOptions,
// RuntimeOptions, ExecutionPlan and Usage, after Environment).
type Params struct {
	OutputType     string          // the part of --out before '='
	ConfigArgument string          // the part of --out after '='
	JSONConfig     json.RawMessage // the config file's collectors[OutputType]

	Logger      logrus.FieldLogger
	Environment map[string]string
}

// Constructor builds an output.
type Constructor func(Params) (Output, error)

// RegisterExtension registers an output constructor under name (ext.Register with
// ext.OutputExtension).
func RegisterExtension(name string, c Constructor) {
	ext.Register(name, ext.OutputExtension, c)
}
