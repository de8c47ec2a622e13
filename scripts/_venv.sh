# Sourced by scripts/demo and scripts/test: create or reuse the virtualenv and install the project into it.
# The install is repeated only when pyproject.toml changes. LATERAL_VENV chooses another virtualenv folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${LATERAL_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Lateral needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2; exit 1; }
  echo "Creating the virtualenv in $VENV ..." >&2
  "$PYTHON" -m venv "$VENV"
fi
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$VENV/.install-stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Lateral and its dependencies into $VENV ..." >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$VENV/.install-stamp"
fi
# The web page's front-end (govuk-frontend) comes from npm, pinned by web/package-lock.json.
# npm trusts only its own CA list: behind a TLS-inspecting proxy it needs the system's as well.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
if command -v npm >/dev/null 2>&1; then
  web_want="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
  if [ "$(cat web/node_modules/.lateral-stamp 2>/dev/null)" != "$web_want" ]; then
    echo "Installing the web page's front-end (govuk-frontend) ..." >&2
    if npm ci --prefix web --silent --no-audit --no-fund; then
      echo "$web_want" > web/node_modules/.lateral-stamp
    else
      echo "npm ci failed: the web page will work, without its GOV.UK styles" >&2
    fi
  fi
else
  echo "npm not found: the web page will work, without its GOV.UK styles" >&2
fi
