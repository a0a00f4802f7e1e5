"""Every TLV test runs against both implementations through the ``impl`` fixture.

``impl`` is the module providing ``decode`` and ``find_value``: the pure-Python reference
always, and the C accelerator when it is built. With ``CONTACTLESS_REQUIRE_C=1`` a missing
accelerator fails the run instead of quietly testing one path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def _implementations() -> list[str]:
    names = ["python"]
    try:
        importlib.import_module("contactless.tlv._ctlv")
    except ImportError:
        if os.environ.get("CONTACTLESS_REQUIRE_C") == "1":
            raise
    else:
        names.append("c")
    return names


@pytest.fixture(params=_implementations())
def impl(request: pytest.FixtureRequest) -> ModuleType:
    module = "contactless.tlv._pytlv" if request.param == "python" else "contactless.tlv._ctlv"
    return importlib.import_module(module)
