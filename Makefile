# aigate — everything a newcomer needs: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: fuzz upstream-crds floor-webhook argocd-lua screenshots helm promtool promptfoo chart install uninstall venv demo test lint typecheck unit control-plane node image lock cosign cluster cluster-down cluster-demo crd docs bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## demo: the failing and the remediated example against the built-in simulator
demo: venv
	$(BIN)/aigate demo

## test: lint and type-check (seconds), then build or reuse the cluster's parts, the image and the tools, then every test
test: venv lint typecheck control-plane node image cosign argocd-lua helm promtool upstream-crds promptfoo
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check operator tests bench hack
	$(BIN)/ruff format --check operator tests bench hack
	$(BIN)/hadolint --failure-threshold style Dockerfile
	$(BIN)/lint-imports --no-logo

typecheck: venv
	$(BIN)/mypy
	MYPYPATH=hack $(BIN)/mypy --strict -p localcluster

## unit: the tests that need no cluster
unit: venv
	$(BIN)/pytest -m 'not cluster'

## fuzz: the property tests (tests/test_properties_*.py) under Hypothesis's `deep` profile, 10,000 examples each
## (tests/README.md has the figures of the last run); `make test` runs them under `ci`
fuzz: venv
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -m 'not cluster' -p no:cacheprovider --hypothesis-show-statistics tests/test_properties_*.py

## control-plane: build (or reuse from the cache) etcd, kube-apiserver, kube-controller-manager
control-plane:
	bash hack/build-control-plane.sh

## node: build (or reuse from the cache) kubelet, kube-proxy, kube-scheduler, containerd, CNI plugins, CoreDNS, pause
node:
	bash hack/build-node.sh

## image: build aigate's image (Dockerfile) with buildah and import it into the running node, if any
image: venv
	bash hack/build-image.sh

## lock: re-pin the image's runtime dependencies (requirements.lock) after a change to pyproject.toml
lock: venv
	$(BIN)/python hack/image/lock.py > requirements.lock

## cluster: start a local cluster with a real node (state in ~/.cache/aigate/clusters/default); prints export KUBECONFIG=...
cluster: venv control-plane node image
	@hack/control-plane start

## cluster-down: stop what `make cluster` started and put the machine back as it was
cluster-down:
	@hack/control-plane stop

## cluster-demo: control plane, CRD, operator, webhooks, simulator; the examples as AIWorkloads; a denied and an admitted rollout; stops all at the end
cluster-demo: venv control-plane node image
	@hack/cluster-demo.sh

## cosign: build (or reuse from the cache) cosign for the evidence interop test
cosign:
	bash hack/build-cosign.sh

## screenshots: the demo's two HTML reports in headless Chromium (Debian's, installed by hack/ensure-chromium.sh when missing) as docs/images/report-*.png
screenshots: venv
	bash hack/ensure-chromium.sh
	$(BIN)/python hack/screenshots.py docs/images

HELM_BIN = "$$(bash hack/build-helm.sh 2>/dev/null | tail -n1)"
ON_LOCAL_CLUSTER = kc="$$(hack/control-plane env)" && eval "$$kc"

## helm: build (or reuse from the cache) helm, pinned in hack/build-helm.sh
helm:
	bash hack/build-helm.sh

## promptfoo: install (or reuse from the cache) promptfoo and Node 22 from the npm registry, the oracle of tests/test_promptfoo_oracle.py
promptfoo:
	bash hack/install-promptfoo.sh

## promtool: build (or reuse from the cache) promtool for the chart's alert tests, pinned in hack/build-promtool.sh
promtool:
	bash hack/build-promtool.sh

## chart: regenerate the chart's CRD templates and docs/chart-values.md (a test keeps them equal)
chart: venv
	$(BIN)/python -m aigate.chartgen charts/aigate docs

## install: install or upgrade the chart on the running `make cluster` with the image `make image` built, then helm test
install: venv helm
	@$(ON_LOCAL_CLUSTER) && $(HELM_BIN) upgrade --install aigate charts/aigate --namespace aigate-system \
	  --create-namespace --values charts/aigate/ci/local-values.yaml --wait --timeout 5m && \
	  $(HELM_BIN) test aigate --namespace aigate-system --logs

## uninstall: remove the chart (its pre-delete hook removes the webhooks first; the CRD and AIWorkloads stay)
uninstall: helm
	@$(ON_LOCAL_CLUSTER) && $(HELM_BIN) uninstall aigate --namespace aigate-system --wait

## floor-webhook: build (or reuse from the cache) the allow-all Go webhook the admission benches measure against
floor-webhook:
	bash hack/build-floor-webhook.sh

## bench: the benchmarks that need no cluster (bench/README.md says how to run the cluster ones and what they printed)
bench: venv floor-webhook
	$(BIN)/python bench/evidence_sign_verify.py -n 50
	$(BIN)/python bench/gate_run.py
	$(BIN)/python bench/runner_overhead.py --levels 50

## upstream-crds: fetch (or reuse from the cache) the CRDs of the custom gated kinds, pinned in hack/build-upstream-crds.sh
upstream-crds:
	bash hack/build-upstream-crds.sh

## argocd-lua: build (or reuse from the cache) the runner of Argo CD's Lua VM for the Argo CD health check tests
argocd-lua:
	bash hack/build-argocd-lua.sh

## crd: regenerate the CRD from the models (a test keeps crds/ equal to them)
crd: venv
	$(BIN)/aigate crd > crds/aiworkloads.aigate.dev.yaml
	$(BIN)/aigate crd --policy > crds/aigatepolicies.aigate.dev.yaml

## docs: regenerate docs/settings.md and docs/resource.md from the code (a test keeps them equal)
docs: venv
	$(BIN)/python -m aigate.docgen docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
