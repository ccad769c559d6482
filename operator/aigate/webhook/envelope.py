"""The envelope of an AdmissionReview, checked before any decision: `aigate webhook` answers every malformed request
with an AdmissionReview refusal or a plain 4xx (`parse_review`, `review_problem`), never a 500 or a hang.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_BODY_BYTES = 8 * 1024 * 1024
"""An UPDATE review carries the object and the old object, each up to etcd's 1.5 MiB: 8 MiB is ample."""
READ_TIMEOUT_SECONDS = 10.0


class BadReview(Exception):
    """The request body is not an AdmissionReview; answered with an HTTP 4xx (there is no uid to answer to)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_review(body: bytes) -> dict[str, Any]:
    """The AdmissionReview in `body`, checked for what the server indexes without looking (BadReview otherwise)."""
    if not body:
        raise BadReview("empty request body; expected an AdmissionReview")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BadReview(f"request body is not JSON: {str(e)[:200]}") from None
    if not isinstance(doc, dict):
        raise BadReview("request body is not an AdmissionReview (a JSON object)")
    if doc.get("kind") != "AdmissionReview" or not str(doc.get("apiVersion", "")).startswith("admission.k8s.io/"):
        raise BadReview(f"not an AdmissionReview (kind {doc.get('kind')!r}, apiVersion {doc.get('apiVersion')!r})")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("AdmissionReview request has no uid")
    return doc


def review_problem(review: Mapping[str, Any]) -> str | None:
    """What a decision needs in a request with a uid; answered as a refusal, since the API server can read one."""
    request = review["request"]
    resource = request.get("resource")
    if not isinstance(resource, dict) or not all(isinstance(resource.get(k), str) for k in ("group", "version")):
        return "AdmissionReview request has no resource (group, version, resource)"
    if not isinstance(resource.get("resource"), str):
        return "AdmissionReview request has no resource (group, version, resource)"
    if not isinstance(request.get("userInfo"), dict):
        return "AdmissionReview request has no userInfo"
    if not isinstance(request.get("object"), dict) and not isinstance(request.get("oldObject"), dict):
        return "AdmissionReview request has neither object nor oldObject"
    return None


def refusal(review: Mapping[str, Any], message: str, code: int) -> dict[str, Any]:
    """A well-formed AdmissionReview answer that refuses the request with `message`."""
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {
            "uid": review["request"]["uid"],
            "allowed": False,
            "status": {"code": code, "message": message},
        },
    }
