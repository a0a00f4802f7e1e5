"""The C accelerator as a module: which path (and which node types) is picked, how a missing
or stale build fails, module mechanics (multi-phase init, per-module state) and a short
leak check. The node types' behaviour is tested in test_node.py.

Import-time behaviour is tested in subprocesses, never by rewriting module globals here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import contactless.tlv as tlv
from contactless.tlv import _pytlv, node

try:
    from contactless.tlv import _ctlv
except ImportError:
    if os.environ.get("CONTACTLESS_REQUIRE_C") == "1":
        raise
    _ctlv = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]
needs_c = pytest.mark.skipif(_ctlv is None, reason="the C accelerator is not built")

#: Makes `import contactless.tlv._ctlv` fail as if the extension had not been built.
BLOCK_EXTENSION = """
import sys
class _NoAccelerator:
    def find_spec(self, name, path=None, target=None):
        if name == "contactless.tlv._ctlv":
            raise ImportError("blocked for the test: pretend the build had no compiler")
sys.meta_path.insert(0, _NoAccelerator())
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with only the given CONTACTLESS_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTLESS_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- which implementation wins ------------------------------------------------------------


@needs_c
def test_the_accelerator_is_used_when_built() -> None:
    if os.environ.get("CONTACTLESS_PUREPYTHON") == "1":
        assert tlv.IMPLEMENTATION == node.IMPLEMENTATION == "python"
        assert tlv.decode is _pytlv.decode
        assert tlv.Tlv is not _ctlv.Tlv and tlv.TlvList is not _ctlv.TlvList
    else:
        assert tlv.IMPLEMENTATION == node.IMPLEMENTATION == "c"
        assert tlv.decode is _ctlv.decode
        assert tlv.find_value is _ctlv.find_value
        assert tlv.find_all_values is _ctlv.find_all_values
        # The node types come with the decoder: both paths return the C ones.
        assert tlv.Tlv is node.Tlv is _ctlv.Tlv and tlv.TlvList is node.TlvList is _ctlv.TlvList


def test_purepython_forces_the_reference() -> None:
    result = run_python(
        """
        import contactless.tlv as tlv, contactless.tlv._pytlv as py, contactless.tlv.node as node
        assert tlv.decode is py.decode and tlv.find_value is py.find_value
        assert tlv.find_all_values is py.find_all_values
        assert "__slots__" in vars(node.Tlv) and node.TlvList.__module__ == node.__name__
        print(tlv.IMPLEMENTATION, node.IMPLEMENTATION)
        """,
        CONTACTLESS_PUREPYTHON="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python python"


def test_a_missing_extension_falls_back_to_python() -> None:
    result = run_python(
        BLOCK_EXTENSION
        + "import contactless.tlv as t, contactless.tlv.node as n\n"
        + "assert '__slots__' in vars(n.Tlv)\n"
        + "print(t.IMPLEMENTATION, n.IMPLEMENTATION)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python python"


def test_require_c_makes_a_missing_extension_an_import_error() -> None:
    result = run_python(BLOCK_EXTENSION + "import contactless.tlv", CONTACTLESS_REQUIRE_C="1")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "CONTACTLESS_REQUIRE_C=1" in result.stderr


@needs_c
def test_require_c_with_the_extension_built() -> None:
    result = run_python(
        "import contactless.tlv as t; print(t.IMPLEMENTATION)", CONTACTLESS_REQUIRE_C="1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "c"


# --- a build that no longer matches the Python side refuses to load -----------------------


@needs_c
def test_a_changed_node_layout_is_refused_at_import() -> None:
    result = run_python(
        """
        import contactless.tlv.node as node
        class Tlv:  # same names, but a __dict__ instead of the six slots
            def __init__(self, *args): self.args = args
        node.Tlv = Tlv
        try:
            import contactless.tlv._ctlv
        except ImportError as error:
            print(error)
        """,
        CONTACTLESS_PUREPYTHON="1",
    )
    assert result.returncode == 0, result.stderr
    assert "_ctlv.c must be updated" in result.stdout


@needs_c
def test_the_depth_limit_is_the_reference_one() -> None:
    # node.py imports _ctlv before _pytlv has set MAX_DEPTH, so with the C node types the
    # import-time check below cannot run: this comparison stands in for it.
    assert _ctlv.MAX_DEPTH == _pytlv.MAX_DEPTH


@needs_c
def test_a_different_max_depth_is_refused_at_import() -> None:
    result = run_python(
        """
        import contactless.tlv._pytlv as py
        py.MAX_DEPTH = 16
        try:
            import contactless.tlv._ctlv
        except ImportError as error:
            print(error)
        """,
        CONTACTLESS_PUREPYTHON="1",
    )
    assert result.returncode == 0, result.stderr
    assert "MAX_DEPTH is 16" in result.stdout


# --- module mechanics -----------------------------------------------------------------------


@needs_c
def test_multi_phase_init_gives_independent_module_instances() -> None:
    # A single-phase module would hand back the cached instance; a multi-phase one runs
    # its exec slot again and gets its own state.
    spec = importlib.util.find_spec("contactless.tlv._ctlv")
    assert spec is not None and spec.loader is not None
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    assert second is not _ctlv
    raw = bytes.fromhex("6F059F02020100")
    assert second.decode(raw) == _ctlv.decode(raw) == _pytlv.decode(raw)
    assert second.find_value(raw, "9F02") == b"\x01\x00"
    # It has node types of its own, but decodes to those in use, node.Tlv / node.TlvList
    # (under CONTACTLESS_PUREPYTHON=1, the reference classes).
    assert second.Tlv is not _ctlv.Tlv and second.TlvList is not _ctlv.TlvList
    decoded = second.decode(raw)
    assert type(decoded) is node.TlvList and type(decoded[0]) is node.Tlv
    del second, decoded


@needs_c
def test_imports_in_a_subinterpreter() -> None:
    interpreters = pytest.importorskip("_xxsubinterpreters")
    interpreter = interpreters.create()
    try:
        interpreters.run_string(
            interpreter,
            textwrap.dedent(
                f"""
                import sys
                sys.path[:0] = {[str(ROOT / "src")]!r}
                from contactless.tlv import _ctlv, node
                assert [n.tag_hex for n in _ctlv.decode(bytes.fromhex("6F035A0101"))] == ["6F"]
                assert _ctlv.find_value(bytes.fromhex("6F035A0101"), "5A") == b"\\x01"
                # the node types in use in this interpreter (its own C ones, unless pure)
                assert type(_ctlv.decode(b"\\x5a\\x00")[0]) is node.Tlv
                assert (node.Tlv is _ctlv.Tlv) == (node.IMPLEMENTATION == "c")
                """
            ),
        )
    finally:
        interpreters.destroy(interpreter)


@needs_c
def test_docstrings_and_signatures() -> None:
    assert getattr(_ctlv.decode, "__text_signature__", None) == "(data, *, strict=True)"
    assert getattr(_ctlv.find_value, "__text_signature__", None) == "(data, tag)"
    assert getattr(_ctlv.find_all_values, "__text_signature__", None) == "(data, tag)"
    assert (ROOT / "src" / "contactless" / "tlv" / "_ctlv.pyi").is_file()


# --- leaks --------------------------------------------------------------------------------


@needs_c
def test_no_leaks_over_many_calls() -> None:
    """A short run of tools/leak_check.py (CI runs it with a million calls)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "leak_check.py"), "--calls", "150000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LEAK" not in result.stdout
