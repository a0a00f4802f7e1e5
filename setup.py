"""Declares the optional C accelerator; all metadata lives in pyproject.toml.

Without a C compiler (or Python headers) the build of ``contactless.tlv._ctlv`` fails
quietly and the package uses its pure-Python decoder. CONTACTLESS_PUREPYTHON=1 builds no
extension; CONTACTLESS_REQUIRE_C=1 makes a failed build an error (CI sets it).
"""

import os

from setuptools import Extension, setup

pure = os.environ.get("CONTACTLESS_PUREPYTHON") == "1"
required = os.environ.get("CONTACTLESS_REQUIRE_C") == "1"
accelerator = Extension(
    "contactless.tlv._ctlv",
    sources=["src/contactless/tlv/_ctlv.c"],
    optional=not required,
)
setup(ext_modules=[] if pure else [accelerator])
