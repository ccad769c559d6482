// The runner of Argo CD's Lua VM for deploy/argocd's health check tests; built by hack/build-argocd-lua.sh.
module aigate.dev/hack/argocd-lua

go 1.23

// gopher-lua at the version Argo CD pins in its go.mod (v3.5.0 and v3.5.1: v1.1.2). When Argo CD moves it, move it here.
require github.com/yuin/gopher-lua v1.1.2
