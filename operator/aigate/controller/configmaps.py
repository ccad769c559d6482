"""The ConfigMaps a webhook decides from: an index of `policy.configmaps.configmap_entry` values seen as one
namespace's name -> ConfigMap, completed on a miss.

The index keeps the data of the ConfigMaps that mattered when they last changed (`configmap_matters`). One made
before the AIWorkload that names it (at every start, the listings arrive in any order) is in the index without its
data; the first decision that reads it fetches it from the API, in a worker thread, and `FetchedConfigMaps` keeps
it per version until it changes (its next event puts its data in the index). A ConfigMap the index does not hold
is missing: a workload naming one that does not exist costs no API call, however often its rollouts are tried.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aigate.policy.configmaps import configmap_entry, has_data

log = logging.getLogger("aigate.operator")

JSON = dict[str, Any]
Lookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the index's entry, or None."""
Fetch = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the ConfigMap as the API has it now (None: not found); raises on any other failure."""

MAX_FETCHED_BYTES = 64 * 1024 * 1024


class ConfigMapUnavailable(Exception):
    """The API server could not be asked for a ConfigMap's data: a decision cannot be made now (retry), and the
    failure is not remembered as the spec's."""


def _version(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = entry.get("metadata") or {}
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(rv)) if uid and rv else None


def _size(entry: Mapping[str, Any]) -> int:
    return sum(len(k) + len(v) for k, v in (entry.get("data") or {}).items()) + 200


class FetchedConfigMaps:
    """The data of ConfigMaps the index holds without it, fetched once per (uid, resourceVersion); bounded in
    bytes (least recently used first out). Thread-safe: decisions run in worker threads."""

    def __init__(self, fetch: Fetch, max_bytes: int = MAX_FETCHED_BYTES) -> None:
        self._fetch = fetch
        self.max_bytes = max_bytes
        self.bytes = 0
        self.fetches = 0
        self._items: OrderedDict[tuple[str, str], tuple[JSON, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def complete(self, namespace: str, name: str, indexed: Mapping[str, Any]) -> JSON | None:
        """The ConfigMap with its data, for an index entry without it: remembered if fetched at the same version,
        else read from the API. None when the API no longer has it. When the API has a newer version than the
        index, that one is returned (the index will catch up with its event)."""
        key = (namespace, name)
        want = _version(indexed)
        with self._lock:
            found = self._items.get(key)
            if found is not None and want is not None and _version(found[0]) == want:
                self._items.move_to_end(key)
                return found[0]
        try:
            body = self._fetch(namespace, name)
        except Exception as e:  # the API client raises its own and urllib3's; none may become the spec's failure
            raise ConfigMapUnavailable(f"ConfigMap {namespace}/{name} could not be read: {type(e).__name__}") from e
        with self._lock:
            self.fetches += 1
        if body is None:
            return None
        entry = configmap_entry(body, keep_data=True)
        cost = _size(entry)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (entry, cost)
            self.bytes += cost
            while self._items and self.bytes > self.max_bytes:
                _, (_, freed) = self._items.popitem(last=False)
                self.bytes -= freed
        log.debug("ConfigMap %s/%s fetched (indexed before a workload named it)", namespace, name)
        return entry


class ConfigMapView(Mapping[str, JSON]):
    """One namespace's ConfigMaps by name, from the index. With `fetched`, an entry the index keeps without data
    is completed (an API read: only off the event loop); without it, such an entry is handed out as it is,
    identity and version only, which is all `VerifyCache.fresh` reads."""

    def __init__(
        self,
        lookup: Lookup,
        namespace: str,
        *,
        fetched: FetchedConfigMaps | None = None,
        listing: Callable[[], Iterable[tuple[str, str]]] = tuple,
    ) -> None:
        self.lookup, self.namespace, self.fetched, self.listing = lookup, namespace, fetched, listing

    def __getitem__(self, name: str) -> JSON:
        entry = self.lookup(self.namespace, name)
        if entry is None:
            raise KeyError(name)
        if has_data(entry) or self.fetched is None:
            return dict(entry)
        completed = self.fetched.complete(self.namespace, name, entry)
        if completed is None:
            raise KeyError(name)
        return completed

    def __iter__(self) -> Iterator[str]:
        return (name for ns, name in self.listing() if ns == self.namespace)

    def __len__(self) -> int:
        return sum(1 for _ in self)
