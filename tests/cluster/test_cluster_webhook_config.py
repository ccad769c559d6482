"""The rendered webhook configurations pass the real API server's validation (server-side dry run), in both the
local (url) and the in-cluster (service) form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aigate.webhook.configurations import mutating_configuration, validating_configuration
from localcluster.testing import Cluster

CLIENT_CONFIGS: dict[str, dict[str, Any]] = {
    "url": {"url": "https://127.0.0.1:9443", "caBundle": "Q0E="},
    "service": {"service": {"name": "aigate-webhook", "namespace": "aigate-system", "port": 443}, "caBundle": "Q0E="},
}


@pytest.mark.parametrize("form", sorted(CLIENT_CONFIGS))
def test_rendered_configurations_are_accepted_by_the_api_server(cluster: Cluster, form: str) -> None:
    cc = CLIENT_CONFIGS[form]
    for config in (
        validating_configuration(cc, operator_namespace="aigate-system", name=f"aigate-dry-run-{form}"),
        mutating_configuration(cc, operator_namespace="aigate-system", name=f"aigate-dry-run-{form}"),
    ):
        r = cluster.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(config))
        stored = json.loads(r.stdout)
        assert [w["name"] for w in stored["webhooks"]] == [w["name"] for w in config["webhooks"]]
        for sent, got in zip(config["webhooks"], stored["webhooks"], strict=True):
            assert got["rules"] == sent["rules"] and got["clientConfig"] == sent["clientConfig"]
