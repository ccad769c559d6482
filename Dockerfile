# aigate's one image: the operator (`aigate operator`), the gate Jobs (`aigate run-gates`) and the simulator
# (`aigate simulate`). Two stages on an official slim Python base; `make image` passes a locally made Debian base
# (hack/build-image.sh: mmdebstrap, python3 + python3-venv) as PYTHON_BASE and builds with buildah, no Docker engine.
ARG PYTHON_BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# the dependencies: a venv from the hash-pinned lock, then no installer left in it (rebuilt only when the lock changes)
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/aigate \
 && /opt/aigate/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
 && python3 -m venv --without-pip /opt/installer \
 && cp -a /opt/aigate/lib/python3*/site-packages/pip /opt/installer/ \
 && /opt/aigate/bin/pip uninstall --yes --quiet setuptools pip
# the package from the working tree, apart (its own small layer in the final stage)
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN PYTHONPATH=/opt/installer /opt/aigate/bin/python -m pip install --no-deps --target /opt/pkg/site /src \
 && mv /opt/pkg/site/bin /opt/pkg/bin \
 && mkdir -p /opt/pkg/lib && mv /opt/pkg/site /opt/pkg/lib/site-packages

FROM ${PYTHON_BASE}
# a passwd entry for the numeric user: Python's getpass.getuser() (kopf's peering identity) and ~ need one
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /opt/aigate /opt/aigate
COPY --from=build /opt/pkg/bin/ /opt/aigate/bin/
COPY --from=build /opt/pkg/lib/site-packages/ /opt/aigate/lib/python3.11/site-packages/
ENV PATH=/opt/aigate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# numeric, so the kubelet can verify runAsNonRoot
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["aigate"]
