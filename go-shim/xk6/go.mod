// The xk6 registration of perfsink: the only code of this repository that names k6
// packages. It requires neither k6 (AGPL) nor a perfsink module version, on purpose:
// `xk6 build` supplies k6, `--replace` supplies the perfsink module (README), and inside the
// repository the workspace that workspace.sh writes supplies both (k6 as a local stand-in).
// logrus (MIT, the version k6 v1.1.0 requires) is for the tests, which hand the output a
// real logrus logger as k6 does.
module github.com/perfsink/perfsink/go-shim/xk6

go 1.24

require github.com/sirupsen/logrus v1.9.3

require golang.org/x/sys v0.0.0-20220715151400-c0bba94af5f8 // indirect
