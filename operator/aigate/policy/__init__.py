"""Pure decisions, apart from the plumbing that gathers their inputs and applies their outcome.

`rollout` (admit, deny or warn a labelled rollout), `acceptance` (who may accept a risk, recorded how),
`lifecycle` (what the reconciler does next for a workload), `conditions` (status conditions and their reasons),
`numbers` (the policy constants). Nothing here imports kopf or the Kubernetes client, nothing does I/O: each
module is tested with tables of plain inputs (tests/test_policy_*.py).
"""
