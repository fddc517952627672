// The xk6 registration of perfsink: the only code of this repository that names k6
// packages. It requires nothing on purpose — not k6 (AGPL) and no perfsink module version:
// `xk6 build` supplies k6, `--replace` supplies the perfsink module (README), and inside the
// repository the workspace that workspace.sh writes supplies both (k6 as a local stand-in).
module github.com/perfsink/perfsink/go-shim/xk6

go 1.24
