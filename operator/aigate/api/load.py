"""Reading an AIWorkload from YAML and resolving what it references (prompts, suite, tool manifests).

A workload file may carry its ConfigMaps as further YAML documents, as `kubectl apply -f` would accept
them; `configMapRef`s resolve against those on a laptop and against the API server in a cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aigate.api.errors import WorkloadError, format_validation_error
from aigate.api.models import AIWorkload, Case, ConfigMapKeyRef, PromptfooImport, Source
from aigate.api.promptfoo import file_references, load_config, promptfoo_cases

MAX_REFERENCED_BYTES = 256 * 1024
"""A referenced prompt, suite or tool manifest larger than this is refused before it is parsed: a gate run needs no
more, and every byte of it is parsed and hashed whenever the spec digest is computed."""
MAX_DEPTH = 64
"""Nesting deeper than this (JSON schemas, manifests, anywhere in the spec) is refused: no JSON schema needs it, and
a deeply nested document exhausts the parser's and the serialiser's recursion."""

ConfigMapLookup = Callable[[ConfigMapKeyRef], str]
"""Returns the text at a ConfigMap key, or raises WorkloadError naming what is missing."""


def configmap_key(data: Mapping[str, Any] | None, ref: ConfigMapKeyRef, where: str, missing: str = "not found") -> str:
    """The one "read a ConfigMap key or fail": `data` is the ConfigMap's data (None when it does not exist),
    `where` names it for a person (namespace/name in a cluster), `missing` says why it is absent."""
    if data is None:
        raise WorkloadError(f"referenced ConfigMap {where} {missing}")
    if ref.key not in data:
        raise WorkloadError(f"referenced ConfigMap {where} has no key {ref.key!r}")
    return str(data[ref.key])


def configmap_lookup(namespace: str, read: Callable[[str], Mapping[str, Any] | None]) -> ConfigMapLookup:
    """A lookup over `read(name)` -> the ConfigMap's data or None (an index, the API), each ConfigMap read once."""
    cache: dict[str, Mapping[str, Any] | None] = {}

    def lookup(ref: ConfigMapKeyRef) -> str:
        if ref.name not in cache:
            cache[ref.name] = read(ref.name)
        return configmap_key(cache[ref.name], ref, f"{namespace}/{ref.name}")

    return lookup


API_METADATA = ("name", "namespace", "uid", "generation")
"""What of an API object's metadata is the workload's: its identity. The rest, and status, are the API server's
and the operator's; of these only name and namespace enter the spec digest."""


def workload_from_api(body: Mapping[str, Any]) -> AIWorkload:
    """The one answer to "which part of an API body is input": apiVersion, kind, spec and `API_METADATA`."""
    meta = body.get("metadata") or {}
    doc = {k: v for k, v in body.items() if k in ("apiVersion", "kind", "spec")}
    doc["metadata"] = {k: meta[k] for k in API_METADATA if k in meta}
    return parse_workload(doc, source=f"AIWorkload {meta.get('namespace')}/{meta.get('name')}")


@dataclass(frozen=True)
class ResolvedTool:
    name: str
    access: str | None
    approval: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ResolvedWorkload:
    """A workload with every reference read: what the runner executes and what the spec digest covers."""

    workload: AIWorkload
    system_prompt: str
    cases: list[Case]
    tools: list[ResolvedTool]
    referenced: dict[str, str] = field(default_factory=dict)
    """Field path -> the referenced text, e.g. {'spec.prompts[0]': '...', 'spec.suite': '...'}."""

    @property
    def name(self) -> str:
        return self.workload.metadata.name


_SURROGATE = re.compile("[\ud800-\udfff]")


def _joined(text: str) -> str:
    """A string with JSON's surrogate-pair escapes (`"\\ud83d\\ude00"`, what `json.dumps` writes for any character
    beyond the BMP) read as the one character they stand for: PyYAML reads each half alone, leaving two lone
    surrogates no field accepts. A lone half stays as it is, for the field's own check to name."""
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text


def join_surrogates(doc: Any) -> Any:
    """`_joined` over every string and key of a loaded YAML document, in place (iterative: any depth)."""
    if isinstance(doc, str):
        return _joined(doc) if _SURROGATE.search(doc) else doc
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            items = list(node.items())
            node.clear()
            for k, v in items:
                node[join_surrogates(k) if isinstance(k, str) else k] = join_surrogates(v) if isinstance(v, str) else v
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    node[i] = join_surrogates(v)
                elif isinstance(v, dict | list):
                    stack.append(v)
    return doc


def _unreadable_character(text: str, e: yaml.reader.ReaderError, source: str) -> list[Any]:
    """A character YAML does not allow unescaped (a control character, DEL): JSON allows most of them in its strings,
    and a JSON document is read as JSON; anything else is one line naming the character and where it is."""
    try:
        return [join_surrogates(json.loads(text))]
    except (ValueError, RecursionError):
        pass
    before = text[: e.position]
    line, column = before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1
    char = e.character if isinstance(e.character, str) else chr(e.character)
    raise WorkloadError(
        f"YAML syntax error at line {line}, column {column}: character U+{ord(char):04X} is not allowed in YAML "
        "(write it as an escape in a double-quoted string)",
        source=source,
    ) from None


def yaml_documents(text: str, source: str) -> list[Any]:
    """The non-empty documents of a YAML (or JSON) text; WorkloadError in one line saying where it breaks."""
    try:
        return [join_surrogates(d) for d in yaml.safe_load_all(text) if d is not None]
    except yaml.reader.ReaderError as e:
        return _unreadable_character(text, e, source)
    except (yaml.YAMLError, RecursionError) as e:
        raise unreadable(e, source) from None


def unreadable(e: yaml.YAMLError | RecursionError, source: str) -> WorkloadError:
    """One line saying where a YAML text breaks: the workload's files and promptfoo's configs alike."""
    if isinstance(e, RecursionError):
        return WorkloadError(f"nested deeper than {MAX_DEPTH} levels", source=source)
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        return WorkloadError(f"YAML syntax error at {where}: {e.problem or e}", source=source)
    return WorkloadError(f"YAML syntax error: {' '.join(str(e).split())}", source=source)


def check_depth(value: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """WorkloadError when `value` nests deeper than `limit` (iterative: a deep document cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    raise WorkloadError(f"{where}: nested deeper than {limit} levels")
                stack.append((child, depth + 1))


def _bounded(text: str, where: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_REFERENCED_BYTES:
        raise WorkloadError(f"{where}: {size} bytes, above the limit of {MAX_REFERENCED_BYTES} bytes")
    return text


def parse_workload(doc: Any, source: str = "workload") -> AIWorkload:
    if not isinstance(doc, dict):
        raise WorkloadError("an AIWorkload must be a YAML mapping", source=source)
    check_depth(doc, "spec" if "spec" in doc else "the document")
    try:
        return AIWorkload.model_validate(doc)
    except ValidationError as e:
        lines = format_validation_error(e)
        raise WorkloadError("; ".join(lines), source=source) from None


@dataclass
class WorkloadFile:
    workload: AIWorkload
    config_maps: dict[str, dict[str, str]]
    base_dir: Path
    source: str

    def config_map_lookup(self, ref: ConfigMapKeyRef) -> str:
        try:
            return configmap_key(
                self.config_maps.get(ref.name),
                ref,
                repr(ref.name),
                "is not in the file (add it as another YAML document)",
            )
        except WorkloadError as e:
            raise WorkloadError(e.message, source=self.source) from None


ONE_WORKLOAD = "aigate takes one YAML file with one document of kind AIWorkload"


def _name(doc: dict[str, Any]) -> str | None:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name) if name else None


def _describe_documents(docs: list[Any], limit: int = 5) -> str:
    """'ConfigMap fraud-prompts, Deployment web': what a file holds instead of an AIWorkload."""
    out = []
    for d in docs[:limit]:
        if not isinstance(d, dict):
            out.append(f"a YAML {type(d).__name__}")
            continue
        name = _name(d)
        out.append(f"{d.get('kind') or '(no kind)'}{' ' + name if name else ''}")
    more = f" and {len(docs) - limit} more" if len(docs) > limit else ""
    return ", ".join(out) + more


def _workload_names(docs: list[dict[str, Any]]) -> str:
    return ", ".join(_name(d) or "(no name)" for d in docs)


def _directory_error(p: Path, source: str) -> WorkloadError:
    """A directory where a file was expected: name a workload file in it, when there is one."""
    candidates = []
    try:
        for f in sorted([*p.glob("*.yaml"), *p.glob("*.yml")])[:50]:
            if f.is_file() and re.search(r"^kind:\s*AIWorkload\s*$", f.read_text(errors="replace"), re.M):
                candidates.append(f)
    except OSError:
        pass
    hint = f", such as {candidates[0]}" if candidates else ""
    return WorkloadError(f"is a directory: {ONE_WORKLOAD}{hint}", source=source)


def load_workload_file(path: str | Path) -> WorkloadFile:
    p = Path(path)
    source = str(path)
    if p.is_dir():
        raise _directory_error(p, source)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError("file not found", source=source) from None
    except OSError as e:
        raise WorkloadError(f"cannot read: {e.strerror or e}", source=source) from None
    except UnicodeDecodeError as e:
        raise WorkloadError(f"cannot read: {e}", source=source) from None
    docs = yaml_documents(text, source)
    workloads = [d for d in docs if isinstance(d, dict) and d.get("kind") == "AIWorkload"]
    if not docs:
        raise WorkloadError(f"the file is empty: {ONE_WORKLOAD}", source=source)
    if not workloads:
        raise WorkloadError(
            f"no document of kind AIWorkload in the file (it holds {_describe_documents(docs)}): {ONE_WORKLOAD}",
            source=source,
        )
    if len(workloads) > 1:
        raise WorkloadError(
            f"{len(workloads)} documents of kind AIWorkload in the file ({_workload_names(workloads)}): "
            "aigate takes one workload per file; put each in its own file",
            source=source,
        )
    config_maps: dict[str, dict[str, str]] = {}
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "ConfigMap":
            name = str((d.get("metadata") or {}).get("name", ""))
            data = d.get("data") or {}
            config_maps[name] = {str(k): str(v) for k, v in data.items()}
    return WorkloadFile(parse_workload(workloads[0], source), config_maps, p.resolve().parent, source)


class _SuiteDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[Case] = Field(min_length=1)


_CASES = TypeAdapter(list[Case])


def _read_source(src: Source, where: str, lookup: ConfigMapLookup, base_dir: Path | None) -> str:
    if src.inline is not None:
        return _bounded(src.inline, where)
    if src.config_map_ref is not None:
        return _bounded(lookup(src.config_map_ref), where)
    assert src.file is not None
    return _bounded(_read_file(src.file, where, base_dir), where)


def confined(directory: Path, name: str, where: str, whose: str = "the workload's") -> Path:
    """`name` under `directory` with symlinks resolved, or WorkloadError naming `where` when it leads outside.

    In CI the workload file comes with the pull request and names the endpoint: a reference it may point anywhere
    would send the runner's files to that endpoint. So whatever a workload (or a config it imports) reads lies in
    its own directory; there is deliberately no way to allow more.
    """
    base = directory.resolve()
    try:
        target = (base / name).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL byte
        raise WorkloadError(f"{where}: cannot resolve {name}: {e}") from None
    if not target.is_relative_to(base):
        raise WorkloadError(f"{where}: {name} resolves outside {whose} directory {base}")
    return target


def _file_path(name: str, where: str, base_dir: Path | None) -> Path:
    if base_dir is None:
        raise WorkloadError(f"{where}.file: files can only be referenced from the CLI; use configMapRef")
    return confined(base_dir, name, f"{where}.file")


def _read_path(path: Path, name: str, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise WorkloadError(f"{where}.file: cannot read {name}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"{where}.file: cannot read {name}: not UTF-8 text") from None


def _read_file(name: str, where: str, base_dir: Path | None) -> str:
    return _read_path(_file_path(name, where, base_dir), name, where)


def _parse_cases(text: str, where: str) -> list[Case]:
    docs = yaml_documents(text, where)
    doc = docs[0] if len(docs) == 1 else docs
    check_depth(doc, where)
    try:
        if isinstance(doc, dict):
            return _SuiteDoc.model_validate(doc).cases
        return _CASES.validate_python(doc)
    except ValidationError as e:
        raise WorkloadError("; ".join(format_validation_error(e, prefix=where))) from None


def resolve(workload: AIWorkload, lookup: ConfigMapLookup, base_dir: Path | None = None) -> ResolvedWorkload:
    """Read every reference; any missing one is a WorkloadError naming the field."""
    spec = workload.spec
    referenced: dict[str, str] = {}
    prompts = []
    for i, src in enumerate(spec.prompts):
        where = f"spec.prompts[{i}]"
        text = _read_source(src, where, lookup, base_dir)
        if src.inline is None:
            referenced[where] = text
        prompts.append(text)
    suite = spec.suite
    if suite.cases is not None:
        cases = suite.cases
    elif suite.import_ is not None:
        cases = _import_promptfoo(suite.import_.promptfoo, lookup, base_dir, referenced)
    else:
        text = _bounded(
            lookup(suite.config_map_ref)
            if suite.config_map_ref is not None
            else _read_file(suite.file or "", "spec.suite", base_dir),
            "spec.suite",
        )
        referenced["spec.suite"] = text
        cases = _parse_cases(text, "spec.suite")
        names = [c.name for c in cases]
        if len(set(names)) != len(names):
            raise WorkloadError("spec.suite: duplicate case names")
    tools = []
    for i, t in enumerate(spec.tools):
        params = t.parameters
        if t.manifest is not None:
            where = f"spec.tools[{i}].manifest"
            text = _read_source(t.manifest, where, lookup, base_dir)
            if t.manifest.inline is None:
                referenced[where] = text
            params = _parse_manifest(text, where)
        tools.append(
            ResolvedTool(
                name=t.name,
                access=t.access,
                approval=t.approval,
                description=t.description or t.name,
                parameters=params or {"type": "object", "properties": {}},
            )
        )
    return ResolvedWorkload(workload, "\n\n".join(prompts), list(cases), tools, referenced)


def _import_promptfoo(
    pf: PromptfooImport, lookup: ConfigMapLookup, base_dir: Path | None, referenced: dict[str, str]
) -> list[Case]:
    """The promptfoo config's tests as cases; its text enters the spec digest as the suite's would."""
    where = "spec.suite.import.promptfoo"
    path: Path | None = None
    if pf.config_map_ref is not None:
        text = lookup(pf.config_map_ref)
    else:
        path = _file_path(pf.file or "", where, base_dir)
        text = _read_path(path, pf.file or "", where)
    referenced[where] = text
    _bounded(text, where)
    try:
        docs = load_config(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise unreadable(e, where) from None
    config = docs[0] if len(docs) == 1 else docs
    check_depth(config, where)
    ref = pf.config_map_ref
    source = pf.file if ref is None else f"ConfigMap {ref.name} key {ref.key}"
    read = None
    if path is not None:  # promptfoo reads `file://` relative to its config: none may lead out of its directory
        for at, name in file_references(config):
            confined(path.parent, name, f"{where}: {pf.file}: {at}", "the config's")
        read = _config_reader(path, pf.file or "", text, referenced)
    try:
        cases = promptfoo_cases(config, pf, read)
    except WorkloadError as e:  # name the config file in every message about it
        if e.message.startswith(f"{where}: ") and not e.message.startswith(f"{where}: {source}: "):
            raise WorkloadError(e.message.replace(f"{where}: ", f"{where}: {source}: ", 1), source=e.source) from None
        raise
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise WorkloadError(f"{where}: duplicate case names")
    return cases


def _config_reader(config: Path, name: str, text: str, referenced: dict[str, str]) -> Callable[[str, str], str]:
    """Reads a promptfoo config's `file://` references: confined to its directory, UTF-8, the config and every
    file it reads together within the native size limit, each in the spec digest like the config."""
    where = "spec.suite.import.promptfoo"
    total = [len(text.encode("utf-8"))]

    def read(ref: str, at: str) -> str:
        field = f"{where}: {name}: {at}"
        path = confined(config.parent, ref, field, "the config's")
        try:
            body = path.read_text(encoding="utf-8")
        except OSError as e:
            raise WorkloadError(f"{field}: cannot read {ref}: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise WorkloadError(f"{field}: cannot read {ref}: not UTF-8 text") from None
        total[0] += len(body.encode("utf-8"))
        if total[0] > MAX_REFERENCED_BYTES:
            raise WorkloadError(
                f"{field}: the config and the files it reads are {total[0]} bytes, above the limit of "
                f"{MAX_REFERENCED_BYTES} bytes"
            )
        referenced[f"{where}: {ref}"] = body
        return body

    return read


def _parse_manifest(text: str, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        docs = yaml_documents(text, where)
        doc = docs[0] if docs else None
    except RecursionError:
        raise WorkloadError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    check_depth(doc, where)
    if not isinstance(doc, dict):
        raise WorkloadError(f"{where}: a tool manifest must be a JSON schema object")
    return doc


def load_and_resolve(path: str | Path) -> ResolvedWorkload:
    wf = load_workload_file(path)
    try:
        return resolve(wf.workload, wf.config_map_lookup, wf.base_dir)
    except WorkloadError as e:
        if e.source is None:
            raise WorkloadError(e.message, source=wf.source) from None
        raise


def configmap_refs(workload: AIWorkload) -> list[ConfigMapKeyRef]:
    """Every ConfigMap key the workload references (prompts, suite, tool manifests)."""
    spec = workload.spec
    refs = [p.config_map_ref for p in spec.prompts]
    refs.append(spec.suite.config_map_ref)
    if spec.suite.import_ is not None:
        refs.append(spec.suite.import_.promptfoo.config_map_ref)
    refs += [t.manifest.config_map_ref for t in spec.tools if t.manifest is not None]
    return [r for r in refs if r is not None]


def configmap_names(workload: AIWorkload) -> list[str]:
    """Every ConfigMap the workload references: what a change of re-gates."""
    return sorted({r.name for r in configmap_refs(workload)})
