"""JavaScript where promptfoo's meaning is JavaScript's: its `regex` assertions (`new RegExp(value).test(output)`) and
inline `transform`s, run in an embedded V8 (mini-racer), the engine promptfoo itself runs on under Node.

Sandboxed: a bare V8 isolate has no `require`, no filesystem, no network and no timers; each call has a time limit
and the isolate a heap limit. One isolate per process, created on first use (about 20 ms), used under a lock.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_MODIFIERS = re.compile(r"\(\?(?:[ims]+(?:-[ims]*)?|-[ims]+):")
_NAMED = re.compile(r"\(\?<([^>=!][^>]*)>")
TIMEOUT_S = 1.0
MAX_HEAP_BYTES = 64 * 1024 * 1024
MAX_JSON_BYTES = 1024 * 1024

# Helpers defined once in the isolate. Arguments travel as JSON text, results come back as JSON text: nothing but
# plain data crosses between the engines.
_PRELUDE = r"""
var __aigate = {
  regex: function (args) {
    var a = JSON.parse(args);
    var re;
    try { re = new RegExp(a.pattern); } catch (e) { return JSON.stringify({error: String(e && e.message || e)}); }
    return JSON.stringify({match: re.test(a.text)});
  },
  transform: function (args) {
    var a = JSON.parse(args);
    var fn;
    try {
      fn = new Function(a.input, 'context', a.code.indexOf('\n') >= 0 ? a.code : 'return ' + a.code);
    } catch (e) { return JSON.stringify({error: 'does not compile: ' + String(e && e.message || e)}); }
    var out;
    try { out = fn(a.value, a.context); } catch (e) { return JSON.stringify({error: String(e && e.message || e)}); }
    if (out && typeof out.then === 'function') {
      return JSON.stringify({error: 'returned a Promise (async is not supported)'});
    }
    return JSON.stringify({value: out === undefined ? null : out, undefined: out === undefined});
  }
};
"""


class JsError(ValueError):
    """The JavaScript did not compile, threw, or exceeded its time or memory limit."""


class _Engine:
    """The isolate, driven from one thread of its own: mini-racer applies a time limit only outside an event loop,
    and the runner calls from one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ctx: Any = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigate-v8")

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(args)
        if len(payload) > MAX_JSON_BYTES:
            raise JsError(f"input above {MAX_JSON_BYTES} bytes")
        return self._thread.submit(self._call, name, payload).result()

    def _call(self, name: str, payload: str) -> dict[str, Any]:
        from py_mini_racer import JSTimeoutException, MiniRacer  # ~20 ms, paid only by a suite that needs it

        with self._lock:
            if self._ctx is None:
                ctx = MiniRacer()
                ctx.set_hard_memory_limit(MAX_HEAP_BYTES)
                ctx.eval(_PRELUDE)
                self._ctx = ctx
            try:
                out = self._ctx.call(f"__aigate.{name}", payload, timeout_sec=TIMEOUT_S)
            except JSTimeoutException:
                self._ctx = None  # a runaway script may have left the isolate busy: start a fresh one
                raise JsError(f"took longer than {TIMEOUT_S:g} s") from None
            except Exception as e:
                self._ctx = None
                raise JsError(f"{type(e).__name__}: {e}"[:200]) from None
        result: dict[str, Any] = json.loads(out) if isinstance(out, str) else {"error": "returned no result"}
        if "error" in result:
            raise JsError(str(result["error"])[:200])
        return result


_ENGINE = _Engine()


def regex_test(pattern: str, text: str) -> bool:
    """`new RegExp(pattern).test(text)`, as Node evaluates it; JsError when the pattern is not valid JavaScript."""
    return bool(_ENGINE.call("regex", {"pattern": pattern, "text": text})["match"])


def regex_error(pattern: str) -> str | None:
    """Why `new RegExp(pattern)` throws on Node 22 (promptfoo's engine), or None when it compiles there. The embedded
    V8 is newer: what it accepts and Node 22's V8 (12.4) does not, modifier groups `(?i:...)` and a group name used
    twice, is reported here as Node 22 would."""
    newer = _newer_syntax(pattern)
    if newer is not None:
        return newer
    try:
        regex_test(pattern, "")
    except JsError as e:
        return str(e)
    return None


def _newer_syntax(pattern: str) -> str | None:
    names: set[str] = set()
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif pattern.startswith("(?", i):
            m = _MODIFIERS.match(pattern, i)
            if m is not None:
                return f"Invalid regular expression: /{pattern}/: Invalid group (modifiers need a newer Node than 22)"
            m = _NAMED.match(pattern, i)
            if m is not None:
                if m.group(1) in names:
                    return f"Invalid regular expression: /{pattern}/: Duplicate capture group name"
                names.add(m.group(1))
        i += 1
    return None


def transform(code: str, value: Any, context: dict[str, Any], input_name: str = "output") -> Any:
    """promptfoo's inline transform: `code` as the body of `function (output, context)` (an expression when it is
    one line); its result as plain data (undefined becomes None)."""
    return _ENGINE.call("transform", {"code": code, "value": value, "context": context, "input": input_name})["value"]
