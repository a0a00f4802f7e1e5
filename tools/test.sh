#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: the README's test command and
# what CI runs (.ci/run). Safe to re-run.
#
#   - as root, installs missing system packages with apt (pcscd, vpcd, pcsc-tools, headers);
#   - makes a virtualenv in .venv (or uses $VENV) and installs the package with all extras,
#     building the C accelerator with CONTACTLESS_REQUIRE_C=1 so a failed build fails here;
#   - runs ruff and mypy, the suite with the C path, the suite again with the pure-Python path,
#     and the bounded sanitizer fuzz of C against Python.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools iso-codes swig gcc python3-dev)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing system packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "== missing system packages (install them as root): ${missing[*]}" >&2
    fi
fi

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "== installing contactless[all] with the C accelerator required"
CONTACTLESS_REQUIRE_C=1 "$VENV/bin/python" -m pip install -q -e ".[all]"
export PATH="$PWD/$VENV/bin:$PATH"

echo "== ruff"
ruff check src tests tools
ruff format --check src tests tools
echo "== mypy"
mypy

echo "== tests, C accelerator (CONTACTLESS_REQUIRE_C=1)"
CONTACTLESS_REQUIRE_C=1 python -m pytest -q -p no:cacheprovider
echo "== tests, pure Python (CONTACTLESS_PUREPYTHON=1)"
CONTACTLESS_PUREPYTHON=1 python -m pytest -q -p no:cacheprovider

echo "== leak check: a million calls of the C accelerator"
python tools/leak_check.py --calls 1000000
echo "== differential fuzz of C against Python: 60 s coverage-guided (UBSan), 60 s under ASan+UBSan"
PYTHON=python bash tools/asan_fuzz.sh 120
