"""Pure decisions, apart from the plumbing that gathers their inputs and applies their outcome.

`rollout` (admit, deny or warn a labelled rollout), `acceptance` (who may accept a risk, recorded how),
`lifecycle` (what the reconciler does next for a workload), `conditions` (status conditions and their reasons);
the numbers the gates judge by are in `aigate.gates.numbers`. Nothing here imports kopf or the Kubernetes client,
nothing does I/O (import-linter checks it: pyproject.toml): each module is tested with tables of plain inputs
(tests/test_policy_*.py).
"""
