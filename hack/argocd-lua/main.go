// Command argocd-lua-health runs an Argo CD resource health check (health.lua) the way Argo CD does, so that
// tests/test_argocd.py can prove deploy/argocd's health check against every case of its health_test.yaml.
//
// Argo CD (util/lua/lua.go) runs health scripts in gopher-lua, the Lua 5.1 VM this module pins at the version
// Argo CD's go.mod pins. A script set in argocd-cm (resource.customizations.health.<group>_<kind>) runs with
// SkipOpenLibs unless useOpenLibs is set, and Argo CD then opens only package, base and table (plus a safe
// subset of os: time and date). This runner opens the same package, base and table and leaves os out, so
// that a script that passes here passes in Argo CD, and a health check that reads the clock fails here: its
// answer must follow from the object alone. Like Argo CD it sets the global `obj` to the object decoded from
// JSON (numbers are float64), runs the script with a 1 s deadline, and accepts a table whose status is one
// of Argo CD's health codes (any other status becomes Unknown with Argo CD's message).
//
// Usage: argocd-lua-health [-open-libs] health.lua < objects.json
// stdin: a JSON array of objects; stdout: a JSON array with, per object, {"status", "message"} or {"error"}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// The codes Argo CD accepts from a health script (gitops-engine pkg/health).
var validStatus = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := l.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

func field(t *lua.LTable, name string) (string, error) {
	switch v := t.RawGetString(name).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("health.%s is a %s, not a string", name, v.Type())
	}
}

func run(script string, obj any, openLibs bool) result {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return result{Error: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return result{Error: err.Error()}
	}
	switch ret := l.Get(-1).(type) {
	case *lua.LNilType:
		return result{}
	case *lua.LTable:
		status, err := field(ret, "status")
		if err != nil {
			return result{Error: err.Error()}
		}
		message, err := field(ret, "message")
		if err != nil {
			return result{Error: err.Error()}
		}
		if !validStatus[status] {
			return result{Status: "Unknown", Message: "Lua returned an invalid health status"}
		}
		return result{Status: status, Message: message}
	default:
		return result{Error: fmt.Sprintf("expect table output from Lua script, not %s", ret.Type())}
	}
}

func gopherLuaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/yuin/gopher-lua" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func main() {
	openLibs := flag.Bool("open-libs", false, "open every Lua library, as Argo CD does for its built-in scripts and with useOpenLibs")
	version := flag.Bool("version", false, "print the gopher-lua version and exit")
	flag.Parse()
	if *version {
		fmt.Println("gopher-lua", gopherLuaVersion())
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua-health [-open-libs] health.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua-health:", err)
		os.Exit(1)
	}
	var objects []any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua-health: stdin is not a JSON array of objects:", err)
		os.Exit(1)
	}
	results := make([]result, len(objects))
	for i, obj := range objects {
		results[i] = run(string(script), obj, *openLibs)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua-health:", err)
		os.Exit(1)
	}
}
