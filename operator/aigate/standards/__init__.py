"""The standards each finding evidences, read from one data file (mapping.yaml beside this module, with its sources).

Keyed by finding code, so that a reworded message keeps its IDs, and a new code without an entry fails a test.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MAPPING_FILE = "mapping.yaml"


class _S(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class StandardSource(_S):
    title: str
    url: str


class FindingStandards(_S):
    title: str
    """What the check finds, in a few words (SARIF's rule description)."""
    ids: list[str] = Field(min_length=1)
    spec_path: str
    """Where in the AIWorkload the finding points; `{subject}` is a list item named by the finding's subject."""


class StandardsMapping(_S):
    sources: dict[str, StandardSource]
    catalogue: dict[str, str]
    """ID -> its title in the standard."""
    findings: dict[str, FindingStandards]

    def framework(self, standard_id: str) -> str:
        """'OWASP-LLM10:2025' -> 'OWASP-LLM': the key of its source."""
        head = standard_id.split(":", 1)[0]
        return re.sub(r"\d+$", "", head) if head.startswith("OWASP-") else head

    def label(self, standard_id: str) -> str:
        """'OWASP-LLM10:2025 Unbounded Consumption'."""
        title = self.catalogue.get(standard_id)
        return f"{standard_id} {title}" if title else standard_id


@lru_cache(maxsize=1)
def mapping() -> StandardsMapping:
    text = resources.files(__package__).joinpath(MAPPING_FILE).read_text(encoding="utf-8")
    doc: Any = yaml.safe_load(text)
    return StandardsMapping.model_validate(doc)


def standard_ids(code: str) -> list[str]:
    """The IDs a finding with this code evidences; [] for a code the file does not know (a test forbids that)."""
    entry = mapping().findings.get(code)
    return list(entry.ids) if entry else []


def spec_path(code: str, subject: str | None = None) -> str:
    """The spec path a finding points at, with its subject named (spec.tools[create_case_note].approval)."""
    entry = mapping().findings.get(code)
    if entry is None:
        return "spec"
    path = entry.spec_path
    if "{subject}" in path:
        if subject:
            return path.replace("{subject}", subject)
        return path.split("[{subject}]", 1)[0]
    return path
