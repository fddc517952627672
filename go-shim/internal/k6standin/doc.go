// Package k6 is the root of a local stand-in for go.k6.io/k6 (see go.mod). Only the
// packages output, metrics and ext exist, with only what perfsink's xk6 registration and
// its tests use.
package k6
