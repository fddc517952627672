// Package ext stands in for go.k6.io/k6/ext: the extension registry.
package ext

import (
	"fmt"
	"sync"
)

// ExtensionType is the kind of an extension.
type ExtensionType uint8

// The extension kinds of k6 v1.1.0.
const (
	JSExtension ExtensionType = iota + 1
	OutputExtension
	SecretSourceExtension
)

// Extension is a registered extension; for an output, Module is its constructor.
type Extension struct {
	Name, Path, Version string
	Type                ExtensionType
	Module              interface{}
}

var (
	mx         sync.RWMutex
	extensions = map[ExtensionType]map[string]*Extension{
		JSExtension:           {},
		OutputExtension:       {},
		SecretSourceExtension: {},
	}
)

// Register registers an extension; like k6 it panics on an unknown type or a duplicate name.
func Register(name string, typ ExtensionType, mod interface{}) {
	mx.Lock()
	defer mx.Unlock()
	exts, ok := extensions[typ]
	if !ok {
		panic(fmt.Sprintf("unsupported extension type: %T", typ))
	}
	if _, ok := exts[name]; ok {
		panic(fmt.Sprintf("extension already registered: %s", name))
	}
	exts[name] = &Extension{Name: name, Type: typ, Module: mod}
}

// Get returns the extensions of one type by name.
func Get(typ ExtensionType) map[string]*Extension {
	mx.RLock()
	defer mx.RUnlock()
	exts, ok := extensions[typ]
	if !ok {
		panic(fmt.Sprintf("unsupported extension type: %T", typ))
	}
	out := make(map[string]*Extension, len(exts))
	for k, v := range exts {
		out[k] = v
	}
	return out
}
