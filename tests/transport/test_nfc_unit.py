"""The nfc: backend without a card: error translation (the table), opening paths that lead
nowhere with the real nfcpy and libusb, nfcpy's import side effects, the wire format of
the UDP emulator, and the self-test diagnostics (with a fake OS layer, since no USB
reader is attached here, and with the real one).
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading

import pytest

from contactless.emulator.card import VirtualCard
from contactless.emulator.nfcudp import (
    MAX_FRAME,
    CardSettings,
    Frame,
    NfcUdpCard,
    decode_datagram,
    encode_datagram,
    parse_address,
    parse_serving_address,
)
from contactless.emulator.profiles import load_profile
from contactless.errors import (
    BackendUnavailable,
    CardRemoved,
    ConfigError,
    ContactlessError,
    LocalProtocolError,
    PermissionDenied,
    ReaderBusy,
    ReaderNotFound,
    RemoteProtocolError,
    StatusWordError,
    TransportError,
    TransportTimeout,
)
from contactless.sw import describe
from contactless.transport import open as open_transport
from contactless.transport import transport_class
from contactless.transport.nfc import (
    EXCHANGE_ERRNO,
    OPEN_ERRNO,
    TAG_ERRNO,
    NfcTransport,
    import_nfcpy,
    translate_error,
)
from contactless.transport.nfc_diagnostics import (
    Finding,
    FindingKind,
    SystemProbe,
    UsbDevice,
    diagnose,
)

pytest.importorskip("nfc.tag.tt4")  # also imports nfc.clf and nfc.tag
import nfc

WHERE = "nfc:usb:072f:2200"


def translated(error: BaseException, phase: str = "exchange") -> ContactlessError:
    return translate_error(error, where=WHERE, what="SELECT PPSE", phase=phase)


# --- error translation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "phase", "expected"),
    [
        (OSError(errno.ENODEV, "No such device"), "open", ReaderNotFound),
        (OSError(errno.EACCES, "Permission denied"), "open", PermissionDenied),
        (OSError(errno.EBUSY, "Device or resource busy"), "open", ReaderBusy),
        (OSError(errno.ECONNREFUSED, "Connection refused"), "exchange", CardRemoved),
        (OSError(errno.ETIMEDOUT, "Timed out"), "exchange", TransportTimeout),
        (OSError(errno.EIO, "I/O error"), "exchange", TransportError),
        (nfc.clf.TimeoutError("no data received"), "exchange", TransportTimeout),
        (nfc.clf.BrokenLinkError("RFOFF"), "exchange", CardRemoved),
        (nfc.clf.TransmissionError("crc"), "exchange", TransportError),
        (nfc.clf.ProtocolError("format"), "exchange", RemoteProtocolError),
        (nfc.clf.UnsupportedTargetError("106B"), "exchange", TransportError),
        (nfc.tag.tt4.Type4TagCommandError(nfc.tag.TIMEOUT_ERROR), "exchange", TransportTimeout),
        (nfc.tag.tt4.Type4TagCommandError(nfc.tag.RECEIVE_ERROR), "exchange", TransportError),
        (
            nfc.tag.tt4.Type4TagCommandError(nfc.tag.PROTOCOL_ERROR),
            "exchange",
            RemoteProtocolError,
        ),
        (IndexError("bytearray index out of range"), "exchange", RemoteProtocolError),
        (RuntimeError("surprise"), "exchange", TransportError),
        (ImportError("missing usb1 module, try 'pip install libusb1'"), "open", BackendUnavailable),
    ],
)
def test_every_nfcpy_failure_becomes_a_typed_error(
    error: BaseException, phase: str, expected: type[ContactlessError]
) -> None:
    result = translated(error, phase)
    assert type(result) is expected
    assert WHERE in result.message


@pytest.mark.parametrize("sw", [0x6A82, 0x6982, 0x6D00, 0x63C1])
def test_a_status_word_from_nfcpy_is_the_cards_answer_not_an_nfcpy_bug(sw: int) -> None:
    # nfcpy's Type 4 Tag layer raises Type4TagCommandError(SW1 << 8 | SW2) for the card's
    # error status words: that is the card's answer and must be reported as one.
    result = translated(nfc.tag.tt4.Type4TagCommandError(sw))
    assert isinstance(result, StatusWordError)
    assert result.sw == sw
    assert describe(sw).split(": ", 1)[1] == result.meaning
    assert f"card answered {sw:04X} to SELECT PPSE on {WHERE}" in result.message
    assert "nfcpy bug" not in str(result) + (result.remedy or "")


def test_a_tag_error_number_that_is_no_status_word_stays_an_nfcpy_failure() -> None:
    result = translated(nfc.tag.tt4.Type4TagCommandError(0x1234))
    assert type(result) is TransportError
    assert "nfcpy bug" in (result.remedy or "")


def test_tables_map_errno_to_contactless_errors() -> None:
    for table in (OPEN_ERRNO, EXCHANGE_ERRNO, TAG_ERRNO):
        for rule in table.values():
            assert issubclass(rule.error, ContactlessError)
            assert "{where}" in rule.message


def test_permission_denied_names_the_udev_rule_and_group() -> None:
    error = translate_error(
        OSError(errno.EACCES, "Permission denied"),
        where=WHERE,
        what="open",
        phase="open",
        context={"permission_remedy": "x"},
    )
    assert error.remedy == "x"
    error = translated(OSError(errno.EACCES, "Permission denied"), "open")
    assert error.remedy is not None
    assert "udev" in error.remedy and "plugdev" in error.remedy
    assert isinstance(error, PermissionError)  # PermissionDenied is also the builtin


def test_busy_names_the_kernel_drivers_to_unload() -> None:
    error = translated(OSError(errno.EBUSY, "busy"), "open")
    assert error.remedy is not None
    assert "pn533_usb" in error.remedy and "port100" in error.remedy
    assert "modprobe -r" in error.remedy and "blacklist" in error.remedy


def test_missing_libusb_names_the_package() -> None:
    missing = OSError(errno.ENOENT, "cannot find a suitable libusb-1.0", ["libusb-1.0.so.0"])
    error = translated(missing, "open")
    assert isinstance(error, BackendUnavailable)
    assert error.remedy is not None and "libusb-1.0-0" in error.remedy


def test_contactless_errors_pass_through_unchanged() -> None:
    original = CardRemoved("gone")
    assert translated(original) is original


# --- opening real nfcpy paths that lead nowhere ---------------------------------------------


@pytest.mark.parametrize("path", ["usb:dead:beef", "usb:250:250", "tty:USB97:pn532", "bogus"])
def test_paths_without_a_device_are_reader_not_found(path: str) -> None:
    with pytest.raises(ReaderNotFound, match=path.split(":")[0]) as caught:
        open_transport(f"nfc:{path}")
    assert caught.value.remedy


def test_an_empty_path_means_usb() -> None:
    assert NfcTransport("nfc:").path == "usb"


def test_the_registry_knows_the_nfc_scheme() -> None:
    assert transport_class("nfc") is NfcTransport


def test_a_closed_transport_refuses_to_transmit() -> None:
    reader = NfcTransport("nfc:udp:127.0.0.1:9")
    with pytest.raises(LocalProtocolError, match="closed"):
        reader.transmit(b"\x00\xa4\x04\x00")


def test_detect_lists_only_nfc_readers() -> None:
    for info in NfcTransport.detect():
        assert info.backend == "nfc" and info.uri.startswith("nfc:")


# --- nfcpy's global side effects --------------------------------------------------------


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_backend_does_not_import_nfcpy() -> None:
    code = "import sys, contactless.transport.nfc; print('nfc' in sys.modules)"
    assert run_python(code) == "False"


def test_nfcpy_import_leaves_warnings_alone() -> None:
    code = (
        "import warnings\n"
        "before = warnings.showwarning\n"
        "from contactless.transport.nfc import import_nfcpy\n"
        "import_nfcpy()\n"
        "print(warnings.showwarning is before)\n"
    )
    assert run_python(code) == "True"


def test_nfcpy_import_keeps_capture_the_application_asked_for() -> None:
    code = (
        "import logging, warnings\n"
        "logging.captureWarnings(True)\n"
        "from contactless.transport.nfc import import_nfcpy\n"
        "import_nfcpy()\n"
        "print(warnings.showwarning is logging._showwarning)\n"
    )
    assert run_python(code) == "True"


def test_import_nfcpy_returns_the_package() -> None:
    assert import_nfcpy() is nfc


# --- the UDP wire format --------------------------------------------------------------------


def test_datagrams_are_brty_space_lowercase_hex_without_crc() -> None:
    assert encode_datagram("106A", b"\xe0\x80") == b"106A e080"
    assert decode_datagram(b"106A 4400") == Frame("106A", b"\x44\x00")
    assert decode_datagram(b"RFOFF") is None


def test_frames_fit_the_drivers_1024_byte_datagrams() -> None:
    assert MAX_FRAME == 509
    assert len(encode_datagram("106A", bytes(MAX_FRAME))) == 1023
    with pytest.raises(LocalProtocolError, match="509"):
        encode_datagram("106A", bytes(MAX_FRAME + 1))
    with pytest.raises(LocalProtocolError, match="empty"):
        encode_datagram("106A", b"")


@pytest.mark.parametrize("datagram", [b"106A", b"106A zz", b"\xff\xfe 00", b"a b c"])
def test_malformed_datagrams_are_remote_protocol_errors(datagram: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_datagram(datagram)


def test_addresses_and_card_settings_parse() -> None:
    assert parse_address("127.0.0.1:54321") == ("127.0.0.1", 54321)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("4000") == ("127.0.0.1", 4000)
    assert parse_serving_address("127.0.0.1:0?type=b&fwi=9") == (
        ("127.0.0.1", 0),
        CardSettings("B", None, 9),
    )
    for bad in ("host:port", "1:70000", "1:0?fsci=9", "1:0?speed=2", "1:0?type=F", "1:0?fwi=x"):
        with pytest.raises(ConfigError):
            parse_serving_address(bad)


def test_serving_on_a_taken_port_is_a_config_error() -> None:
    card = VirtualCard(load_profile("visa"))
    with NfcUdpCard(card, "127.0.0.1", 0) as first:
        with pytest.raises(ConfigError, match="cannot serve"):
            NfcUdpCard(card, "127.0.0.1", first.address[1])
        assert first.uri == f"nfc:udp:127.0.0.1:{first.address[1]}"


def test_server_stops_when_asked() -> None:
    server = NfcUdpCard(VirtualCard(load_profile("visa")), "127.0.0.1", 0)
    stop = threading.Event()
    stop.set()
    assert server.serve_forever(stop).value == "stopped"
    server.close()
    with pytest.raises(LocalProtocolError):
        server.serve_forever(stop)


# --- diagnostics ----------------------------------------------------------------------------

ACR122U = UsbDevice(0x072F, 0x2200, 1, 4)
RCS380 = UsbDevice(0x054C, 0x06C3, 2, 7)
MOUSE = UsbDevice(0x046D, 0xC077, 1, 2)


class FakeSystem(SystemProbe):
    """The OS layer, scripted: which devices exist, which nodes are accessible, which
    drivers are bound, and what opening a path raises."""

    def __init__(
        self,
        devices: list[UsbDevice] | BaseException,
        *,
        denied: frozenset[UsbDevice] = frozenset(),
        drivers: dict[UsbDevice, str] | None = None,
        open_errors: dict[str, BaseException] | None = None,
    ) -> None:
        self.devices = devices
        self.denied = denied
        self.drivers = drivers or {}
        self.open_errors = open_errors or {}
        self.opened: list[str] = []

    def usb_devices(self) -> list[UsbDevice]:
        if isinstance(self.devices, BaseException):
            raise self.devices
        return self.devices

    def can_access(self, device: UsbDevice) -> bool:
        return device not in self.denied

    def kernel_driver(self, device: UsbDevice) -> str | None:
        return self.drivers.get(device)

    def node_owner(self, device: UsbDevice) -> tuple[str, str] | None:
        return ("root", "root")

    def open_path(self, path: str) -> str:
        self.opened.append(path)
        if path in self.open_errors:
            raise self.open_errors[path]
        return f"device at {path}"


def kinds(findings: list[Finding]) -> list[FindingKind]:
    return [finding.kind for finding in findings]


def test_a_usable_reader_is_found_and_other_usb_devices_ignored() -> None:
    system = FakeSystem([MOUSE, ACR122U])
    [finding] = diagnose(probe=system)
    assert finding.ok and finding.path == "usb:001:004"
    assert finding.device is not None and "ACR122U" in finding.device
    assert system.opened == ["usb:001:004"]


def test_permission_problem_comes_with_the_udev_fix() -> None:
    [finding] = diagnose(probe=FakeSystem([ACR122U], denied=frozenset({ACR122U})))
    assert finding.kind is FindingKind.PERMISSION
    assert "/dev/bus/usb/001/004" in finding.message and "root:root" in finding.message
    assert finding.remedy is not None
    assert 'ATTRS{idVendor}=="072f"' in finding.remedy
    assert 'ATTRS{idProduct}=="2200"' in finding.remedy
    assert "plugdev" in finding.remedy


@pytest.mark.parametrize(("device", "driver"), [(ACR122U, "pn533_usb"), (RCS380, "port100")])
def test_busy_reader_names_its_kernel_driver(device: UsbDevice, driver: str) -> None:
    [finding] = diagnose(probe=FakeSystem([device], drivers={device: driver}))
    assert finding.kind is FindingKind.BUSY
    assert finding.kernel_driver == driver
    assert finding.remedy is not None
    assert f"modprobe -r {driver}" in finding.remedy and f"blacklist {driver}" in finding.remedy


def test_reader_held_by_pcscd_says_so() -> None:
    [finding] = diagnose(probe=FakeSystem([ACR122U], drivers={ACR122U: "usbfs"}))
    assert finding.kind is FindingKind.BUSY
    assert finding.remedy is not None and "pcscd" in finding.remedy


def test_missing_libusb_names_the_package_to_install() -> None:
    error = OSError(errno.ENOENT, "cannot find a suitable libusb-1.0", ["libusb-1.0.so.0"])
    [finding] = diagnose(probe=FakeSystem(error))
    assert finding.kind is FindingKind.LIBUSB_MISSING
    assert finding.remedy == "install it: sudo apt install libusb-1.0-0"


def test_missing_nfcpy_dependency_names_the_extra() -> None:
    [finding] = diagnose(probe=FakeSystem(ImportError("No module named 'usb1'")))
    assert finding.kind is FindingKind.NFCPY_MISSING
    assert finding.remedy is not None and "contactless[nfc]" in finding.remedy


def test_no_reader_is_one_not_found_finding() -> None:
    [finding] = diagnose(probe=FakeSystem([MOUSE]))
    assert finding.kind is FindingKind.NOT_FOUND and finding.remedy


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.EACCES, "denied"), FindingKind.PERMISSION),
        (OSError(errno.EBUSY, "busy"), FindingKind.BUSY),
        (OSError(errno.ENODEV, "gone"), FindingKind.NOT_FOUND),
        (OSError(errno.ENOENT, "cannot find a suitable libusb-1.0"), FindingKind.LIBUSB_MISSING),
        (ImportError("no nfc"), FindingKind.NFCPY_MISSING),
        (ValueError("odd"), FindingKind.ERROR),
    ],
)
def test_open_failures_are_classified(error: BaseException, kind: FindingKind) -> None:
    system = FakeSystem([ACR122U], open_errors={"usb:001:004": error})
    [finding] = diagnose(probe=system)
    assert finding.kind is kind
    if kind is FindingKind.BUSY:
        assert finding.kernel_driver == "pn533_usb"


def test_without_opening_only_enumeration_is_used() -> None:
    system = FakeSystem([ACR122U])
    [finding] = diagnose(probe=system, open_devices=False)
    assert finding.ok and system.opened == []


def test_findings_serialize_to_json() -> None:
    [finding] = diagnose(probe=FakeSystem([ACR122U], drivers={ACR122U: "pn533_usb"}))
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["kind"] == "busy" and data["kernel_driver"] == "pn533_usb"


def test_real_system_diagnosis_never_raises() -> None:
    findings = diagnose()
    assert findings
    assert all(isinstance(finding.kind, FindingKind) and finding.message for finding in findings)


def test_an_emulated_reader_path_is_found_by_opening_it() -> None:
    with NfcUdpCard(VirtualCard(load_profile("visa")), "127.0.0.1", 0) as server:
        findings = diagnose([f"udp:127.0.0.1:{server.address[1]}"], open_devices=False)
    udp = [finding for finding in findings if finding.path and finding.path.startswith("udp")]
    assert len(udp) == 1 and udp[0].ok
    assert udp[0].device is not None and "UDP" in udp[0].device


def test_a_bad_explicit_path_is_not_found() -> None:
    [*_, finding] = diagnose(["tty:USB97:pn532"])
    assert finding.kind is FindingKind.NOT_FOUND
    assert finding.path == "tty:USB97:pn532"


# --- a failed USB open explained by the diagnosis -----------------------------------------


@pytest.mark.parametrize(
    ("path", "system", "expected", "says"),
    [
        ("usb", FakeSystem([ACR122U], drivers={ACR122U: "pn533_usb"}), ReaderBusy, "pn533_usb"),
        ("usb:072f:2200", FakeSystem([ACR122U], denied=frozenset({ACR122U})),
         PermissionDenied, "udev"),
        ("usb:001", FakeSystem([ACR122U], drivers={ACR122U: "usbfs"}), ReaderBusy, "pcscd"),
        ("usb", FakeSystem(OSError(errno.ENOENT, "cannot find a suitable libusb-1.0")),
         BackendUnavailable, "libusb-1.0-0"),
        ("usb:054c", FakeSystem([ACR122U], drivers={ACR122U: "pn533_usb"}), ReaderNotFound,
         "cable"),
        ("usb:002:004", FakeSystem([ACR122U], drivers={ACR122U: "pn533_usb"}), ReaderNotFound,
         "cable"),
    ],
)  # fmt: skip
def test_usb_reader_nfcpy_skipped_is_explained(
    path: str, system: FakeSystem, expected: type[ContactlessError], says: str
) -> None:
    # nfcpy really looks (and finds no reader here); the diagnosis sees the scripted one.
    reader = NfcTransport(f"nfc:{path}")
    reader.system_probe = system
    with pytest.raises(expected) as caught:
        reader.connect()
    assert type(caught.value) is expected
    assert says in str(caught.value)
