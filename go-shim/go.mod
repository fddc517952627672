module github.com/perfsink/perfsink/go-shim

go 1.24
