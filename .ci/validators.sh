#!/usr/bin/env bash
# Installs the real validators that the `mdw export` tests (crates/mdw/tests/cli/export.rs)
# check their output with, so CI does not trust our own reading of the formats:
#   - kubernetes-validate (PyPI; carries the Kubernetes JSON schemas) in .ci/.venv
#   - docker-compose 1.29 (Debian), whose `config` validates a Compose file offline
#   - systemd-analyze (Debian's systemd), for `systemd-analyze verify` of the units
#   - prometheus-client and openapi-core (PyPI) in .ci/.venv, for the HTTP view's tests
#   - grpcio-tools (PyPI) in .ci/.venv: protoc's Python client of mDW's RussellService
# The tests find them through MDW_KUBERNETES_VALIDATE / MDW_DOCKER_COMPOSE or .ci/.venv
# and PATH, and fail (not skip) when one is missing and CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0

missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v systemd-analyze >/dev/null || missing+=(systemd)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=.ci/.venv
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
    echo "== pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

# --- HTTP view (crates/mdw/tests/cli/http.rs, via .ci/http_check.py) ---------------------
# prometheus_client's text-format parser reads /metrics; openapi-core checks the JSON
# answers against docs/openapi.yaml. Same venv, own pins.
PROMETHEUS_CLIENT_VERSION=0.21.1
OPENAPI_CORE_VERSION=0.19.5
if ! "$venv/bin/python" -c "import prometheus_client, openapi_core, sys; \
    from importlib.metadata import version as v; \
    sys.exit(v('prometheus_client') != '$PROMETHEUS_CLIENT_VERSION' or v('openapi-core') != '$OPENAPI_CORE_VERSION')" \
    2>/dev/null; then
    echo "== pip install prometheus-client==$PROMETHEUS_CLIENT_VERSION openapi-core==$OPENAPI_CORE_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "openapi-core==$OPENAPI_CORE_VERSION"
fi
# --- end HTTP view ---------------------------------------------------------------------

# --- mDW's RussellService (crates/mdw/tests/compat/python_client.rs) ---------------------
# grpcio-tools runs protoc on proto/mdw/russell/russell.proto and generates a Python client
# (.ci/grpc_compat_check.py), a client of the same generator family as mDW's Go one.
GRPCIO_TOOLS_VERSION=1.85.1
if ! "$venv/bin/python" -c "import grpc, grpc_tools, sys; \
    from importlib.metadata import version as v; \
    sys.exit(v('grpcio-tools') != '$GRPCIO_TOOLS_VERSION')" 2>/dev/null; then
    echo "== pip install grpcio-tools==$GRPCIO_TOOLS_VERSION into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "grpcio-tools==$GRPCIO_TOOLS_VERSION"
fi
# --- end RussellService -------------------------------------------------------------------

docker-compose version --short
systemd-analyze --version | head -n 1
"$venv/bin/kubernetes-validate" --version
"$venv/bin/python" -c "from importlib.metadata import version as v; print('grpcio-tools', v('grpcio-tools'))"
