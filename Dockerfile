# aigate's one image: the operator (`aigate operator`), the gate Jobs (`aigate run-gates`) and the simulator
# (`aigate simulate`). Two stages on an official slim Python base; `make image` passes a locally made Debian base
# (hack/build-image.sh: mmdebstrap, python3 + python3-venv) as PYTHON_BASE and builds with buildah, no Docker engine.
ARG PYTHON_BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/aigate
# the dependency layer: rebuilt only when the lock changes
COPY requirements.lock /tmp/requirements.lock
RUN /opt/aigate/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY operator /src/operator
# the package itself, then no installer left in the venv
RUN /opt/aigate/bin/pip install --no-deps /src \
 && /opt/aigate/bin/pip uninstall --yes --quiet setuptools pip \
 && /opt/aigate/bin/aigate --version

FROM ${PYTHON_BASE}
COPY --from=build /opt/aigate /opt/aigate
ENV PATH=/opt/aigate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# numeric, so the kubelet can verify runAsNonRoot
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["aigate"]
