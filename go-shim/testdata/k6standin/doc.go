// Package k6 is the root of a local stand-in for go.k6.io/k6, whose go.mod ../../workspace.sh
// writes into a temporary workspace. Only the packages output, metrics and ext exist, with
// only what perfsink's xk6 registration and its tests use.
package k6
