"""The scheme registry: lazy imports, entry-point plugins, open(), detect(), open_reader()."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import contactless.transport as registry
from contactless.errors import (
    BackendUnavailable,
    ConfigError,
    LocalProtocolError,
    TransportError,
)
from contactless.reader import open_reader, wait_for_card
from contactless.transport import ReaderInfo, Transport

# A third-party backend as a plugin package would ship it: a Transport subclass in its own
# module, plus a dist-info whose entry_points.txt registers it.
PLUGIN_MODULE = '''
import threading

from contactless.errors import ServiceUnavailable
from contactless.transport.base import ReaderInfo, Transport


class LoopTransport(Transport):
    """Answers each APDU with its reversed bytes and 9000."""

    enforces_deadline = True
    instances = []

    def __init__(self, uri, *, timeout=None, greeting="hello"):
        super().__init__(uri, timeout=timeout)
        self.greeting = greeting
        LoopTransport.instances.append(self)

    def _transmit(self, apdu, timeout):
        return apdu[::-1] + b"\\x90\\x00"

    def _card_present(self):
        return True

    @classmethod
    def detect(cls):
        return [ReaderInfo("loop:0", "loopback reader 0", True, "loop")]


class DownTransport(LoopTransport):
    @classmethod
    def detect(cls):
        raise ServiceUnavailable("loopd is not running")


class BuggyTransport(LoopTransport):
    @classmethod
    def detect(cls):
        return 1 / 0


SLOW_RELEASE = threading.Event()


class SlowTransport(LoopTransport):
    @classmethod
    def detect(cls):
        SLOW_RELEASE.wait(30)
        return []


class NotATransport:
    pass
'''


def write_plugin(
    root: Path, module: str, entries: dict[str, str], body: str = PLUGIN_MODULE
) -> None:
    (root / f"{module}.py").write_text(body)
    dist_info = root / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    lines = [f"{name} = {target}" for name, target in entries.items()]
    (dist_info / "entry_points.txt").write_text(
        "[contactless.transports]\n" + "\n".join(lines) + "\n"
    )


@pytest.fixture
def plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Install a fake distribution registering loop: and friends; returns its module name."""
    module = f"fake_contactless_plugin_{abs(hash(request.node.nodeid)) % 10**8}"
    write_plugin(
        tmp_path,
        module,
        {
            "loop": f"{module}:LoopTransport",
            "down": f"{module}:DownTransport",
            "buggy": f"{module}:BuggyTransport",
            "notatransport": f"{module}:NotATransport",
            "sim": f"{module}:LoopTransport",  # tries to take over a built-in scheme
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    sys.modules.pop(module, None)


# --- the table and URIs -------------------------------------------------------------------


def test_builtin_schemes_are_registered_as_strings() -> None:
    assert registry.SCHEMES == {
        "pcsc": "contactless.transport.pcsc:PcscTransport",
        "nfc": "contactless.transport.nfc:NfcTransport",
        "sim": "contactless.transport.sim:SimTransport",
        "replay": "contactless.transport.replay:ReplayTransport",
    }


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sim:visa?latency_ms=40", ("sim", "visa?latency_ms=40")),
        ("PCSC:ACS ACR122U PICC Interface 00 00", ("pcsc", "ACS ACR122U PICC Interface 00 00")),
        ("nfc:udp:127.0.0.1:54321", ("nfc", "udp:127.0.0.1:54321")),
        ("pcsc:", ("pcsc", "")),
    ],
)
def test_split_uri(uri: str, expected: tuple[str, str]) -> None:
    assert registry.split_uri(uri) == expected


@pytest.mark.parametrize("uri", ["visa", ":visa", "", 42])
def test_a_uri_without_scheme_is_a_config_error(uri: object) -> None:
    with pytest.raises(ConfigError) as info:
        registry.open(uri)  # type: ignore[arg-type]
    assert "sim:" in str(info.value) or "string" in str(info.value)


def test_unknown_scheme_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown reader scheme 'bluetooth:'") as info:
        registry.open("bluetooth:00:11:22")
    for scheme in ("pcsc:", "nfc:", "sim:", "replay:"):
        assert scheme in str(info.value)


# --- loading backends ---------------------------------------------------------------------


def test_a_registered_module_that_does_not_exist_is_backend_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.SCHEMES, "ghost", "contactless.transport.ghost:GhostTransport")
    with pytest.raises(BackendUnavailable, match=r"ghost: backend .* not part of") as info:
        registry.open("ghost:0")
    assert isinstance(info.value, ImportError)


@pytest.fixture
def pcsc_without_pyscard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Register as pcsc: a backend module that imports pyscard at the top, as the real one
    will, on a machine where pyscard is not installed; returns its "module:Class"."""
    module = "pcsc_backend_needing_pyscard"
    (tmp_path / f"{module}.py").write_text("import smartcard\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "smartcard", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, module, raising=False)
    target = f"{module}:PcscTransport"
    monkeypatch.setitem(registry.SCHEMES, "pcsc", target)
    return target


def test_a_missing_extra_names_the_extra_to_install(pcsc_without_pyscard: str) -> None:
    with pytest.raises(BackendUnavailable, match="needs pyscard") as info:
        registry.open("pcsc:")
    assert "pip install 'contactless[pcsc]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_opening_builtin_backends_never_leaks_an_import_error() -> None:
    # pcsc/nfc/replay are written separately; until they exist, open() says so cleanly.
    for scheme in ("pcsc", "nfc", "replay"):
        try:
            registry.transport_class(scheme)
        except BackendUnavailable as error:
            assert f"{scheme}:" in str(error)


def test_open_connects_and_passes_options(plugin: str) -> None:
    transport = registry.open("loop:0", timeout=0.5, greeting="hi")
    try:
        assert transport.connected and transport.timeout == 0.5
        assert transport.greeting == "hi"  # type: ignore[attr-defined]
        assert transport.transmit(b"\x00\xa4\x04\x00") == b"\x00\x04\xa4\x00\x90\x00"
    finally:
        transport.disconnect()


def test_open_rejects_options_the_backend_does_not_take(plugin: str) -> None:
    with pytest.raises(LocalProtocolError, match="loop: backend does not accept"):
        registry.open("loop:0", baud=9600)


def test_entry_point_plugins_extend_the_registry(plugin: str) -> None:
    known = registry.schemes()
    assert known["loop"] == f"{plugin}:LoopTransport"
    assert registry.transport_class("loop").__name__ == "LoopTransport"
    assert issubclass(registry.transport_class("LOOP:"), Transport)


def test_a_plugin_cannot_take_over_a_builtin_scheme(
    plugin: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="contactless.transport"):
        assert registry.schemes()["sim"] == "contactless.transport.sim:SimTransport"
    assert "built in" in caplog.text


def test_an_entry_point_naming_something_else_is_backend_unavailable(plugin: str) -> None:
    with pytest.raises(BackendUnavailable, match="does not name a contactless Transport"):
        registry.open("notatransport:")


def test_a_plugin_that_fails_to_import_is_backend_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, "broken_plugin_xyz", {"broken": "broken_plugin_xyz:X"}, "1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailable, match="ZeroDivisionError"):
        registry.open("broken:")
    reported = [info for info in registry.detect() if info.backend == "broken"]
    assert len(reported) == 1 and not reported[0].available
    assert "ZeroDivisionError" in reported[0].detail


# --- detect -------------------------------------------------------------------------------


def test_detect_fans_out_and_reports_unusable_backends(
    plugin: str, pcsc_without_pyscard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        registry,
        "SCHEMES",
        {
            "pcsc": pcsc_without_pyscard,
            "ghost": "contactless.transport.ghost:GhostTransport",
            "sim": registry.SCHEMES["sim"],
        },
    )
    found = {info.backend: info for info in registry.detect()}
    assert found["loop"] == ReaderInfo("loop:0", "loopback reader 0", True, "loop")
    assert found["down"].available is False and "loopd is not running" in found["down"].detail
    assert found["buggy"].available is False and "ZeroDivisionError" in found["buggy"].detail
    assert found["ghost"].available is False and "not part of" in found["ghost"].detail
    assert found["pcsc"].available is False and "contactless[pcsc]" in found["pcsc"].detail
    assert found["sim"].backend == "sim"  # the plugin's "sim" did not replace it
    assert found["sim"].uri != "loop:0"


def test_detect_gives_up_on_a_backend_that_does_not_answer(
    plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "SCHEMES", {"slow": f"{plugin}:SlowTransport"})
    try:
        found = {info.backend: info for info in registry.detect(timeout=0.2)}
    finally:
        sys.modules[plugin].SLOW_RELEASE.set()
    assert found["slow"].available is False
    assert "did not answer within 0.2 s" in found["slow"].detail
    assert found["loop"].available


# --- open_reader --------------------------------------------------------------------------


def test_open_reader_yields_a_connected_transport_and_closes_it(plugin: str) -> None:
    with open_reader("loop:0") as reader:
        assert reader.connected
        assert wait_for_card(reader, 1) is True
    assert not reader.connected


def test_open_reader_closes_on_error(plugin: str) -> None:
    with pytest.raises(TransportError, match="boom"), open_reader("loop:0") as reader:
        raise TransportError("boom")
    assert not reader.connected


# --- import cost --------------------------------------------------------------------------


def test_import_and_sim_do_not_import_pyscard_or_nfcpy() -> None:
    script = textwrap.dedent(
        """
        import sys
        import contactless
        import contactless.transport
        import contactless.session
        import contactless.reader
        contactless.transport.schemes()
        with contactless.reader.open_reader("sim:visa") as reader:
            assert reader.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("smartcard", "nfc", "usb")
            or name in ("contactless.transport.pcsc", "contactless.transport.nfc")
        )
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
