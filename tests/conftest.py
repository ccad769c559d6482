"""Hypothesis profiles for the property tests (tests/test_properties_*.py): `ci` unless HYPOTHESIS_PROFILE says
otherwise (CI and `make test`), `deep` for `make fuzz`. tests/README.md has the figures of both."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    # the same examples on every run, so a red CI is a change of the code, never the luck of the draw; the whole
    # property suite stays near a minute on two cores
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    # AIGATE_FUZZ_EXAMPLES lowers it for a run that must fit a time (tests/README.md says what each run used)
    max_examples=int(os.environ.get("AIGATE_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
