"""nfc: device paths are checked before nfcpy sees them: a malformed udp host or port, or
a usb/tty path nfcpy cannot read, is a ConfigError naming the bad part (not "this may be
an nfcpy bug" or a reader that seems missing)."""

from __future__ import annotations

import socket

import pytest

from contactless.errors import ConfigError, ReaderNotFound
from contactless.transport import open as open_transport
from contactless.transport.nfc import NfcTransport, check_device_path, translate_error


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("nfc:udp:999.1.1.1:99999", "host '999.1.1.1' is not an IPv4 address (999 is more"),
        ("nfc:udp:127.0.0.1:99999", "port '99999' is not a number from 1 to 65535"),
        ("nfc:udp:127.0.0.1:0", "port '0'"),
        ("nfc:udp:127.0.0.1:http", "port 'http'"),
        ("nfc:udp:1.2.3:54321", "host '1.2.3' is not an IPv4 address (it needs 4 numbers)"),
        ("nfc:udp:bad_host:54321", "host 'bad_host' is not an IPv4 address or a host name"),
        ("nfc:udp:::1:54321", "too many parts"),
        ("nfc:usb:72f:2200", "'usb:72f:2200' is not a USB device path"),
        ("nfc:usb:zz", "is not a USB device path"),
        ("nfc:tty:/dev/ttyUSB0", "'tty:/dev/ttyUSB0' is not a serial device path"),
    ],
)
def test_malformed_paths_are_config_errors_naming_the_part(uri: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("(", r"\(").replace(")", r"\)")):
        NfcTransport(uri)


@pytest.mark.parametrize(
    "path",
    [
        "usb",
        "usb:072f",
        "usb:072f:2200",
        "usb:001",
        "usb:002:004",
        "tty:USB0:pn532",
        "tty:S0",
        "com:COM1:arygon",
        "udp",
        "udp:localhost",
        "udp:127.0.0.1:54321",
        "udp:reader-1.example.org:54321",
    ],
)
def test_well_formed_paths_pass(path: str) -> None:
    check_device_path(path, f"nfc:{path}")
    assert NfcTransport(f"nfc:{path}").path == path


def test_an_unknown_kind_is_still_left_to_nfcpy() -> None:
    # nfcpy has plugins of its own; an unknown kind finds no device (ReaderNotFound).
    check_device_path("bogus", "nfc:bogus")
    pytest.importorskip("nfc.clf")
    with pytest.raises(ReaderNotFound):
        open_transport("nfc:bogus")


def test_an_unresolvable_udp_host_is_a_config_error() -> None:
    error = translate_error(
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        where="nfc:udp:no-such-host.invalid:54321",
        what="open",
        phase="open",
    )
    assert isinstance(error, ConfigError)
    assert "does not resolve" in error.message
    assert "no-such-host.invalid" in error.message
