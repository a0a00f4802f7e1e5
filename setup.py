"""Declares the optional C accelerator; all metadata lives in pyproject.toml.

CONTACTLESS_PUREPYTHON=1 builds no extension; CONTACTLESS_REQUIRE_C=1 makes a failed
build an error instead of a silent fall back to the pure-Python path.
"""

import os

from setuptools import Extension, setup

pure = os.environ.get("CONTACTLESS_PUREPYTHON") == "1"
required = os.environ.get("CONTACTLESS_REQUIRE_C") == "1"
ext_modules = [] if pure else [
    Extension(
        "contactless.tlv._ctlv",
        sources=["src/contactless/tlv/_ctlv.c"],
        optional=not required,
    )
]
setup(ext_modules=[e for e in ext_modules if os.path.exists(e.sources[0])])
