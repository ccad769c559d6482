"""A promptfoo config's `tests` as aigate cases: suites teams already have, judged as promptfoo judges them.

Each test becomes one case: its `vars` rendered into the messages (`{{ name }}` placeholders), its assertions (after
`defaultTest`'s) kept as promptfoo keeps them (type, value, threshold, weight, metric, transform) and judged by
aigate.probes.promptfoo_judge with promptfoo's meaning, never compiled into aigate's smaller `expect`. An assertion
type aigate cannot judge (`javascript`, `llm-rubric`, ...) refuses the suite with one line naming the test, the
assertion and the file, unless `unsupported: skip`, which lists every skipped assertion in the report.

The config is read as promptfoo's js-yaml reads it (YAML 1.2: `NO`, `Yes`, `1:30` stay strings).
"""

from __future__ import annotations

import datetime
import json
import posixpath
import re
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from aigate import jsengine
from aigate.api.errors import WorkloadError, format_validation_error
from aigate.api.models import Case, Message, PromptfooImport
from aigate.api.pftypes import PfAssertion, PfTest, comma_separated, js_string, js_trim, schema_of
from aigate.api.promptfoo_csv import tests_from_csv

WHERE = "spec.suite.import.promptfoo"
FILE_URL = "file://"
MAX_CASES = 1000
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%")
TEXT_TYPES = (
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "icontains-any",
    "contains-all",
    "icontains-all",
    "regex",
    "starts-with",
    "is-json",
)
SUPPORTED = (*TEXT_TYPES, *(f"not-{t}" for t in TEXT_TYPES), "latency", "not-latency", "assert-set")
_ASSERT_KEYS = {"type", "value", "threshold", "weight", "metric", "description", "transform"}
_TEST_KEYS = {"description", "vars", "assert", "threshold", "options", "metadata"}
_SET_KEYS = {"type", "assert", "threshold", "weight", "metric", "description"}


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core scalars, as js-yaml's default schema resolves them: only
    true/false are booleans, no sexagesimal or leading-zero octal numbers; `~`, `null` and empty are null."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [
        (tag, rx)
        for tag, rx in v
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[0-1_]+)$"),
    list("-+0123456789"),
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    base = {"0o": 8, "0x": 16, "0b": 2}.get(text[:2], 10)
    return sign * int(text[2:] if base != 10 else text, base)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_config(text: str) -> list[Any]:
    """The documents of a promptfoo config, as js-yaml reads them (yaml.YAMLError when it does not parse)."""
    return [d for d in yaml.load_all(text, Loader=_Yaml12Loader) if d is not None]


def _fail(message: str) -> WorkloadError:
    return WorkloadError(f"{WHERE}: {message}")


Reader = Callable[[str, str], str]
_CODE_FILES = (".js", ".cjs", ".mjs", ".ts", ".cts", ".mts", ".py", ".rb")
_BINARY_FILES = (".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".mp3", ".wav", ".ogg", ".mp4", ".webm")


class Files:
    """The `file://` references of a config, read as promptfoo reads them, through `read(name, field)`: the
    loader's reader, which confines each to the config's directory and counts it in the spec digest. None for a
    config from a ConfigMap, which has no directory."""

    def __init__(self, read: Reader | None) -> None:
        self._read = read

    def text(self, ref: str, at: str) -> str:
        name = ref.removeprefix(FILE_URL)
        if self._read is None:
            raise _fail(f"{at}: {ref[:80]!r}: file:// is read only from a config in a file (import.promptfoo.file)")
        return self._read(name, at)

    @staticmethod
    def _refuse_code(ref: str, at: str) -> None:
        suffix = "." + ref.rsplit(".", 1)[-1].split(":", 1)[0].lower() if "." in ref else ""
        if suffix in _CODE_FILES:
            raise _fail(f"{at}: {ref[:80]!r} is code (promptfoo would run it): aigate does not run suite code yet")
        if suffix in _BINARY_FILES:
            raise _fail(f"{at}: {ref[:80]!r}: a {suffix} file is not read by aigate")

    def value(self, ref: str, at: str) -> Any:
        """An assertion value: .json/.yaml/.yml parsed, .txt trimmed, anything else refused (promptfoo's
        processFileReference)."""
        self._refuse_code(ref, at)
        lower = ref.lower()
        if lower.endswith((".json", ".yaml", ".yml")):
            return self.document(ref, at)
        if lower.endswith(".txt"):
            return js_trim(self.text(ref, at))
        raise _fail(f"{at}: {ref[:80]!r}: promptfoo reads an assertion value only from .json, .yaml, .yml or .txt")

    def var(self, ref: str, at: str) -> str:
        """A var's value: .yaml/.yml as compact JSON text, any other text file trimmed (promptfoo's renderPrompt)."""
        self._refuse_code(ref, at)
        if ref.lower().endswith((".yaml", ".yml")):
            return json.dumps(self.document(ref, at), separators=(",", ":"), ensure_ascii=False)
        return js_trim(self.text(ref, at))

    def document(self, ref: str, at: str) -> Any:
        try:
            docs = load_config(self.text(ref, at))
        except yaml.YAMLError as e:
            raise _fail(f"{at}: {ref[:80]!r} is not YAML or JSON: {str(e).splitlines()[0]}") from None
        if len(docs) > 1:
            raise _fail(f"{at}: {ref[:80]!r} holds {len(docs)} YAML documents; promptfoo reads one")
        return docs[0] if docs else None


def substitute(text: str, variables: dict[str, Any], where: str) -> str:
    """`{{ name }}` -> the var's value; any other template syntax (filters, tags) is an error, not left as is."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in variables:
            raise _fail(f"{where}: uses {{{{{name}}}}} but the test has no var {name!r}")
        value = variables[name]
        if isinstance(value, dict | list):
            return json.dumps(value)
        return "" if value is None else js_string(value)

    out = _PLACEHOLDER.sub(one, text)
    if _TEMPLATE_SYNTAX.search(out):
        raise _fail(f"{where}: template syntax other than {{{{var}}}} is not supported: {text[:80]!r}")
    return out


def _prompts(config: dict[str, Any], files: Files) -> list[tuple[str | None, list[Message]]]:
    """The config's prompts as messages, each with the label its cases are named by (None when there is one)."""
    prompts = config.get("prompts")
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(prompts, dict):  # {file://prompt.txt: label}
        prompts = [{"id": k, "label": v} for k, v in prompts.items()]
    if not isinstance(prompts, list) or not prompts:
        raise _fail(f"the config has no prompts (a list of them): declare the messages in {WHERE}.messages")
    out: list[tuple[str | None, list[Message]]] = []
    for k, item in enumerate(prompts):
        at = f"prompts[{k}]"
        label = item.get("label") if isinstance(item, dict) else None
        source = (item.get("raw") or item.get("id")) if isinstance(item, dict) else item
        if not isinstance(source, str):
            raise _fail(
                f"{at}: {str(item)[:60]!r} is neither text nor a file://: declare the messages in {WHERE}.messages"
            )
        texts = _prompt_file(source, at, files) if source.startswith(FILE_URL) else [source]
        for n, text in enumerate(texts):
            name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:30] if isinstance(label, str) else ""
            name = name + (f"-{n + 1}" if len(texts) > 1 else "") if name else f"prompt-{len(out) + 1}"
            out.append((name, _messages(text, k)))
    if len(out) == 1:
        return [(None, out[0][1])]
    return out


def _prompt_file(ref: str, at: str, files: Files) -> list[str]:
    """The prompts of a prompt file, as promptfoo reads them: .txt split at lines of `---` (each trimmed), .md as
    is, .json and .yaml/.yml as their JSON (a chat message list, or text)."""
    name = ref.removeprefix(FILE_URL)
    if any(c in name for c in "*?["):
        raise _fail(f"{at}: {ref[:80]!r}: globs are not read by aigate; name each file")
    Files._refuse_code(ref, at)
    lower = name.lower()
    if lower.endswith(".txt"):
        chunks: list[str] = []
        buffer: list[str] = []
        for line in [*re.split(r"\r?\n", files.text(ref, at)), "---"]:
            if js_trim(line) == "---":
                if js_trim("\n".join(buffer)):
                    chunks.append(js_trim("\n".join(buffer)))
                buffer = []
            else:
                buffer.append(line)
        if not chunks:
            raise _fail(f"{at}: {ref[:80]!r} holds no prompt")
        return chunks
    if lower.endswith(".md"):
        return [files.text(ref, at)]
    if lower.endswith((".json", ".yaml", ".yml")):
        return [json.dumps(files.document(ref, at), separators=(",", ":"), ensure_ascii=False)]
    raise _fail(f"{at}: {ref[:80]!r}: aigate reads prompts from .txt, .md, .json, .yaml or .yml files")


def _messages(prompt: str, k: int) -> list[Message]:
    try:
        chat = json.loads(prompt)
    except ValueError:
        return [Message(role="user", content=prompt)]
    if isinstance(chat, list):
        try:
            return [Message.model_validate(m) for m in chat]
        except ValidationError as e:
            raise _fail(f"prompts[{k}]: its chat messages: " + "; ".join(format_validation_error(e))) from None
    return [Message(role="user", content=prompt)]


def _number(raw: dict[str, Any], key: str, at: str) -> float | None:
    v = raw.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(f"{at}: {key} must be a number (got {v!r})")
    return float(v)


def _render(value: Any, variables: dict[str, Any], at: str, files: Files, top: bool = True) -> Any:
    """promptfoo renders a string value, and each string of a list value, with the test's vars, and reads a
    file:// one (not rendered); other values (an is-json schema, numbers) stay as they are."""
    if isinstance(value, str):
        if value.startswith(FILE_URL):
            return files.value(value, at)
        return substitute(value, variables, at)
    if isinstance(value, list) and top:
        return [_render(v, variables, at, files, top=False) if isinstance(v, str) else v for v in value]
    return value


def _check_value(kind: str, value: Any, at: str) -> None:
    """Refuse at import what promptfoo would throw on at run time (its `invariant`s), with the assertion named."""
    base = kind.removeprefix("not-")
    text = isinstance(value, str) and value != ""
    if base in ("contains", "icontains"):
        number = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        if not (text or number):
            raise _fail(f"{at}: {kind} needs a non-empty text or a number as its value")
    elif base in ("starts-with", "regex"):
        if not text:
            raise _fail(f"{at}: {kind} needs a non-empty text value")
        if base == "regex":
            why = jsengine.regex_error(value)
            if why is not None:
                raise _fail(f"{at}: not a valid JavaScript regular expression: {why}")
    elif base == "equals":
        if value is None:
            raise _fail(f"{at}: {kind} needs a value")
    elif base.endswith(("-any", "-all")):
        if not (text or (isinstance(value, list) and value)):
            raise _fail(f"{at}: {kind} needs a list of values (or a comma-separated text)")
        if text:
            try:
                comma_separated(value)
            except ValueError as e:
                raise _fail(f"{at}: {kind}: {e}") from None
    elif base == "is-json":
        try:
            schema_of(value)
        except (ValueError, yaml.YAMLError):
            raise _fail(f"{at}: is-json's value must be a JSON schema (an object)") from None


def _assertion(
    raw: Any, variables: dict[str, Any], at: str, unsupported: list[str], in_set: bool, files: Files
) -> PfAssertion | None:
    """One assertion as promptfoo keeps it, or None when skipped (listed in `unsupported`)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise _fail(f"{at}: an assertion is a mapping with a type")
    kind = raw["type"]
    if kind == "assert-set" and not in_set:
        extra = sorted(set(raw) - _SET_KEYS)
        if extra:
            raise _fail(f"{at}: assert-set with {', '.join(extra)} is not supported")
        children = raw.get("assert")
        if not isinstance(children, list) or not children:
            raise _fail(f"{at}: assert-set needs a list of assertions under assert")
        kept = [_assertion(c, variables, f"{at}.assert[{j}]", unsupported, True, files) for j, c in enumerate(children)]
        return PfAssertion(
            type=kind,
            where=at,
            threshold=_number(raw, "threshold", at),
            weight=_weight(raw, at),
            metric=raw.get("metric") if isinstance(raw.get("metric"), str) else None,
            children=tuple(c for c in kept if c is not None),
        )
    if kind not in SUPPORTED:
        unsupported.append(f"{at}: assertion type {kind!r}")
        return None
    extra = sorted(set(raw) - _ASSERT_KEYS)
    if extra:
        raise _fail(f"{at}: {kind} with {', '.join(extra)} is not supported")
    transform = raw.get("transform")
    if transform is not None and (not isinstance(transform, str) or transform.startswith(FILE_URL)):
        raise _fail(f"{at}: transform must be inline JavaScript (a file:// transform is not read by aigate)")
    value = _render(raw.get("value"), variables, at, files)
    if kind.removeprefix("not-") == "latency" and _number(raw, "threshold", at) is None:
        raise _fail(f"{at}: latency needs a threshold in milliseconds")
    _check_value(kind, value, at)
    return PfAssertion(
        type=kind,
        where=at,
        value=value,
        threshold=_number(raw, "threshold", at),
        weight=_weight(raw, at),
        metric=raw.get("metric") if isinstance(raw.get("metric"), str) else None,
        transform=transform,
    )


def _weight(raw: dict[str, Any], at: str) -> float:
    w = _number(raw, "weight", at)
    if w is not None and w < 0:
        raise _fail(f"{at}: weight must not be negative")
    return 1.0 if w is None else w


def _options_transform(test: dict[str, Any], default: dict[str, Any], where: str) -> str | None:
    """The test's `options.transform` (promptfoo merges defaultTest's options under the test's)."""
    options = {**(default.get("options") or {}), **(test.get("options") or {})}
    changing = sorted(k for k in ("prefix", "suffix", "transformVars", "storeOutputAs") if options.get(k))
    if changing:
        raise _fail(f"{where}: options.{changing[0]} is not supported (it changes what promptfoo sends or keeps)")
    code = options.get("transform", options.get("postprocess"))
    if code is None:
        return None
    if not isinstance(code, str) or code.startswith(FILE_URL):
        raise _fail(f"{where}: options.transform must be inline JavaScript (a file:// transform is not read by aigate)")
    return code


def _pf_test(
    test: dict[str, Any], default: dict[str, Any], variables: dict[str, Any], where: str, mode: str, files: Files
) -> PfTest:
    extra = sorted(set(test) - _TEST_KEYS)
    if extra:
        raise _fail(f"{where}: a test with {', '.join(extra)} is not supported (aigate runs the workload's models)")
    unsupported: list[str] = []
    asserts: list[PfAssertion] = []
    own = test.get("assert") or []
    inherited = default.get("assert") or []
    for label, items in (("defaultTest", inherited), (where, own)):
        if not isinstance(items, list):
            raise _fail(f"{label}: assert must be a list of assertions")
        for i, raw in enumerate(items):
            a = _assertion(raw, variables, f"{label}.assert[{i}]", unsupported, False, files)
            if a is not None:
                asserts.append(a)
    if unsupported and mode == "refuse":
        raise _fail(
            f"{unsupported[0]} cannot be judged by aigate "
            f"(supported: {', '.join(SUPPORTED)}); remove it, or set import.promptfoo.unsupported: skip to run the rest"
        )
    threshold = test.get("threshold", default.get("threshold"))
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise _fail(f"{where}: threshold must be a number")
    return PfTest(
        asserts=tuple(asserts),
        threshold=None if threshold is None else float(threshold),
        transform=_options_transform(test, default, where),
        vars=variables,
        skipped=tuple(unsupported),
    )


def _case_name(test: dict[str, Any], i: int, seen: set[str], prompt: str | None = None) -> str:
    desc = test.get("description")
    base = re.sub(r"[^a-z0-9]+", "-", desc.lower()).strip("-")[:60] if isinstance(desc, str) else ""
    name = (base or f"test-{i + 1}") + (f"-{prompt}" if prompt else "")
    if name in seen:
        name = f"{name}-{i + 1}"
    seen.add(name)
    return name


def file_references(config: Any) -> list[tuple[str, str]]:
    """(field, path) of every `file://` string in a config, keys included, in document order: promptfoo would read
    each (a prompt, tests, a var's value), so the loader confines every one, whether aigate reads it or not."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("", config)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, str) and node.startswith(FILE_URL):
            found.append((at or "(top level)", node.removeprefix(FILE_URL)))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        below = []
        for key, child in children:
            field = f"{at}[{key}]" if isinstance(node, list) else f"{at}.{key}" if at else str(key)
            if isinstance(node, dict):
                below.append((f"a key of {at or 'the config'}", key))
            below.append((field, child))
        stack.extend(reversed(below))
    return found


def _vars_of(test: dict[str, Any], where: str, files: Files) -> dict[str, Any]:
    """A test's `vars`: a mapping, or file:// YAML/JSON mappings merged in order (promptfoo's readTestFiles)."""
    raw = test.get("vars")
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    refs = [raw] if isinstance(raw, str) else raw
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise _fail(f"{where}: vars must be a mapping or file:// references to YAML files of them")
    out: dict[str, Any] = {}
    for ref in refs:
        if any(c in ref for c in "*?["):
            raise _fail(f"{where}.vars: {ref[:80]!r}: globs are not read by aigate; name each file")
        doc = files.document(ref if ref.startswith(FILE_URL) else FILE_URL + ref, f"{where}.vars")
        if not isinstance(doc, dict):
            raise _fail(f"{where}.vars: {ref[:80]!r} does not hold a mapping of vars")
        out.update(doc)
    return out


def _load_vars(variables: dict[str, Any], where: str, files: Files) -> dict[str, Any]:
    """The test's vars with file:// ones read; a date, a list or another non-text var is one clear line."""
    out = dict(variables)
    for name, value in variables.items():
        if isinstance(value, datetime.date):
            raise _fail(
                f"{where}: var {name} is a date ({value.isoformat()}): promptfoo reads an unquoted date as a "
                f"JavaScript Date; quote it ('{value.isoformat()}') to mean the text"
            )
        if isinstance(value, list):
            raise _fail(f"{where}: var {name} is a list (one test per value): write one test per value")
        if isinstance(value, str) and value.startswith(FILE_URL):
            out[name] = files.var(value, f"{where}.vars.{name}")
    return out


def _dataset(ref: str, at: str, files: Files, standalone: bool) -> list[tuple[str, Any]]:
    """The tests of one tests file, each with where it is named: promptfoo's readStandaloneTestsFile for a
    `tests:` string (JSON rows described `Row #N`) and its glob loader for a string in the `tests` list."""
    name = ref.removeprefix(FILE_URL)
    if any(c in name for c in "*?[") or name.startswith(("http://", "https://", "huggingface://", "az://")):
        raise _fail(f"{at}: {ref[:80]!r}: aigate reads tests only from a named file beside the config")
    Files._refuse_code(ref, at)
    lower = name.lower()
    if lower.endswith(".csv"):
        try:
            tests: list[Any] = tests_from_csv(files.text(ref, at), name)
        except ValueError as e:
            raise _fail(f"{at}: {e}") from None
    elif lower.endswith((".yaml", ".yml")):
        doc = files.document(ref, at)
        tests = doc if isinstance(doc, list) else [doc]
    elif lower.endswith(".jsonl"):
        tests = []
        for n, line in enumerate(files.text(ref, at).split("\n"), start=1):
            if line.strip():
                try:
                    tests.append(json_parse_line(line))
                except ValueError:
                    raise _fail(f"{at}: {name} line {n} is not JSON") from None
        if standalone:
            tests = [{**t, "description": t.get("description") or f"Row #{j + 1}"} for j, t in enumerate(tests)]
    elif lower.endswith(".json"):
        doc = files.document(ref, at)
        tests = doc if isinstance(doc, list) else [doc]
        if standalone and all(isinstance(t, dict) for t in tests):
            tests = [{**t, "description": t.get("description") or f"Row #{j + 1}"} for j, t in enumerate(tests)]
    else:
        raise _fail(f"{at}: {ref[:80]!r}: aigate reads tests from .csv, .yaml, .yml, .json or .jsonl files")
    base = posixpath.dirname(name)
    out = []
    for j, t in enumerate(tests):
        at_j = f"{name}[{j}]"
        # a tests file's own `vars: name.yaml` resolve beside that file (promptfoo's readTest); promptfoo finds no
        # file for a file:// one there and runs the test with no vars: refused rather than imported so
        if isinstance(t, dict) and isinstance(t.get("vars"), str | list):
            refs = [t["vars"]] if isinstance(t["vars"], str) else t["vars"]
            if any(str(r).startswith(FILE_URL) for r in refs):
                raise _fail(
                    f"{at_j}.vars: promptfoo reads no file:// vars inside a tests file (it runs the test with no "
                    "vars): name the file without file://, relative to the tests file"
                )
            t = {**t, "vars": [FILE_URL + posixpath.join(base, str(r)) for r in refs]}
        out.append((at_j, t))
    return out


def json_parse_line(line: str) -> Any:
    return json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def _tests(config: dict[str, Any], files: Files) -> list[tuple[str, Any]]:
    """Every test of the config, inline or from files, with where it is named."""
    tests = config.get("tests")
    if isinstance(tests, str):
        return _dataset(tests, "tests", files, standalone=not tests.endswith(("yaml", "yml")))
    if not isinstance(tests, list):
        return []
    out: list[tuple[str, Any]] = []
    for i, t in enumerate(tests):
        if isinstance(t, str):
            out += _dataset(t, f"tests[{i}]", files, standalone=False)
        else:
            out.append((f"tests[{i}]", t))
    return out


def _default_test(config: dict[str, Any], files: Files) -> dict[str, Any]:
    default = config.get("defaultTest") or {}
    if isinstance(default, str) and default.startswith(FILE_URL):
        default = files.document(default, "defaultTest") or {}
    if not isinstance(default, dict):
        raise _fail("defaultTest must be a mapping (or a file:// YAML/JSON file of one)")
    return default


def promptfoo_cases(config: Any, spec: PromptfooImport, read: Reader | None = None) -> list[Case]:
    """The cases a promptfoo config's tests make (each test once per prompt); WorkloadError naming the test, the
    assertion and the field aigate refuses."""
    if not isinstance(config, dict):
        raise _fail("a promptfoo config is a YAML mapping with tests")
    if config.get("scenarios"):
        raise _fail("scenarios are not supported: write their tests out under tests")
    files = Files(read)
    prompts: list[tuple[str | None, list[Message]]] = (
        [(None, spec.messages)] if spec.messages else _prompts(config, files)
    )
    tests = _tests(config, files)
    if not tests:
        raise _fail("the config has no tests")
    if len(tests) * len(prompts) > MAX_CASES:
        raise _fail(
            f"the config has {len(tests)} tests{f' x {len(prompts)} prompts' if len(prompts) > 1 else ''}, above "
            f"the limit of {MAX_CASES} cases a suite may have"
        )
    default = _default_test(config, files)
    default_vars = _vars_of(default, "defaultTest", files)
    cases: list[Case] = []
    seen: set[str] = set()
    for i, (where, test) in enumerate(tests):
        if not isinstance(test, dict):
            raise _fail(f"{where}: a test is a mapping (vars, assert)")
        variables = {**default_vars, **_vars_of(test, where, files)}
        variables = _load_vars(variables, where, files)
        pf = _pf_test(test, default, variables, where, spec.unsupported, files)
        for label, templates in prompts:
            messages = [
                Message(role=m.role, content=substitute(m.content, variables, f"{where} message {j}"))
                for j, m in enumerate(templates)
            ]
            name = _case_name(test, i, seen, label)
            try:
                case = Case.model_validate({"name": name, "messages": [m.model_dump() for m in messages]})
            except ValidationError as e:
                raise _fail(f"{where}: " + "; ".join(format_validation_error(e))) from None
            case.expect.set_promptfoo(pf)
            cases.append(case)
    return cases
