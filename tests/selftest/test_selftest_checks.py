"""Each check on its own: what it measures and which outcome it reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selftest_support import PACKAGE_FILES, install, run, write

from contactless._version import __version__
from contactless.selftest import SelftestOptions
from contactless.selftest.baseline import (
    Baseline,
    BaselineConfig,
    BaselineLink,
    BaselineSoftware,
)
from contactless.selftest.checks import host as host_check
from contactless.selftest.checks import link as link_check
from contactless.selftest.checks import reader as reader_check
from contactless.selftest.checks import service, software
from contactless.selftest.context import Context, LinkStats, percentile
from contactless.selftest.settings import SelftestSettings


def context(tmp_path: Path, *, config: str | None = None, **options: Any) -> Context:
    if config is not None:
        options["config"] = str(write(tmp_path / "terminal.toml", config))
    return Context.create(SelftestOptions(**options))


def baseline(**changes: Any) -> Baseline:
    made = Baseline(
        created="2025-01-01T00:00:00+00:00",
        software=BaselineSoftware(__version__, "c", {"sim": True}),
        config=BaselineConfig(None, "0" * 64, {}),
    )
    return dataclasses.replace(made, **changes)


# --- software.integrity --------------------------------------------------------------------


def test_an_intact_installation_passes(tmp_path: Path) -> None:
    dist = install(tmp_path / "site", PACKAGE_FILES)
    outcome = software.check_integrity(context(tmp_path, distribution=dist))
    assert outcome.id == "software.record_ok"
    assert outcome.params["count"] == str(len(PACKAGE_FILES) + 2)  # + METADATA, INSTALLER
    assert outcome.data["changed"] == [] and outcome.data["missing"] == []


def test_a_changed_file_and_a_missing_one_are_named(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = install(site, PACKAGE_FILES)
    (site / "contactless/session.py").write_bytes(b"SESSION = 2\n")
    (site / "contactless/tlv/_pytlv.py").unlink()
    outcome = software.check_integrity(context(tmp_path, distribution=dist))
    assert outcome.id == "software.record_mismatch"
    assert outcome.params == {
        "changed": "1",
        "missing": "1",
        "first": "contactless/session.py",
    }
    assert outcome.data["missing"] == ["contactless/tlv/_pytlv.py"]


def test_an_installation_without_record_cannot_be_verified(tmp_path: Path) -> None:
    dist = install(tmp_path / "site", PACKAGE_FILES, record=False)
    assert software.check_integrity(context(tmp_path, distribution=dist)).id == (
        "software.record_missing"
    )


def test_an_editable_install_says_so(tmp_path: Path) -> None:
    dist = install(tmp_path / "site", {}, editable_source="/src/contactless")
    outcome = software.check_integrity(context(tmp_path, distribution=dist))
    assert outcome.id == "software.record_editable"
    assert outcome.params["location"] == "/src/contactless"


def test_an_editable_install_with_a_changed_hook_still_fails(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = install(site, {"__editable__.contactless.pth": b"/src\n"}, editable_source="/src")
    (site / "__editable__.contactless.pth").write_bytes(b"/elsewhere\n")
    outcome = software.check_integrity(context(tmp_path, distribution=dist))
    assert outcome.id == "software.record_mismatch"


def test_the_running_installation_is_checked_by_default(tmp_path: Path) -> None:
    # This test environment is an editable install (pip install -e): honest about it.
    outcome = software.check_integrity(context(tmp_path))
    assert outcome.id in ("software.record_editable", "software.record_ok")
    assert outcome.data["changed"] == []


def test_no_installation_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    import contactless.selftest.context as context_module

    def missing(name: str) -> Any:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(context_module, "distribution", missing)
    assert software.check_integrity(context(tmp_path)).id == "software.not_installed"


# --- software.version / upgrade marker / backends ------------------------------------------


def test_metadata_that_disagrees_with_the_code(tmp_path: Path) -> None:
    dist = install(tmp_path / "site", PACKAGE_FILES, version="9.9.9")
    outcome = software.check_version(context(tmp_path, distribution=dist))
    assert outcome.id == "software.version_mismatch"
    assert outcome.params == {"metadata": "9.9.9", "code": __version__}


def test_an_upgrade_since_the_baseline_is_reported_not_blamed(tmp_path: Path) -> None:
    ctx = context(tmp_path, distribution=install(tmp_path / "site", PACKAGE_FILES))
    ctx.baseline = baseline(software=BaselineSoftware("0.0.9", "c", {}))
    outcome = software.check_version(ctx)
    assert outcome.id == "software.version_upgraded"
    assert outcome.params == {"version": __version__, "before": "0.0.9"}


def test_a_leftover_upgrade_marker(tmp_path: Path) -> None:
    marker = write(tmp_path / "state" / "upgrade-in-progress", "pid 1234\n")
    old = time.time() - 2 * 3600
    os.utime(marker, (old, old))
    ctx = context(
        tmp_path, config=f'[selftest]\nupgrade_markers = ["{tmp_path}/state/upgrade-*"]\n'
    )
    outcome = software.check_upgrade_marker(ctx)
    assert outcome.id == "software.marker_found"
    assert outcome.params == {"path": str(marker), "age": "2 h"}


def test_no_marker(tmp_path: Path) -> None:
    ctx = context(tmp_path, config=f'[selftest]\nupgrade_markers = ["{tmp_path}/upgrade"]\n')
    assert software.check_upgrade_marker(ctx).id == "software.no_marker"


def broken_plugin(site: Path) -> None:
    """A reader backend registered by a package whose code is gone (a half upgrade)."""
    install(
        site,
        {},
        extra_dist_files={
            "entry_points.txt": "[contactless.transports]\nacme = acme_reader:Acme\n"
        },
    )


def test_a_configured_backend_that_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ctx = context(tmp_path, config='[selftest]\nbackends = ["acme"]\n', reader="sim:visa")
    outcome = software.check_backends(ctx)
    assert outcome.id == "software.backend_missing"
    assert outcome.params == {"backends": "acme"}
    assert "acme" in outcome.data["problems"]


def test_a_backend_that_worked_at_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ctx = context(tmp_path, reader="sim:visa")
    ctx.baseline = baseline(software=BaselineSoftware(__version__, "c", {"acme": True}))
    assert software.check_backends(ctx).id == "software.backend_lost"


def test_the_reader_s_own_backend_is_needed(tmp_path: Path) -> None:
    ctx = context(tmp_path, reader="nosuch:reader")
    outcome = software.check_backends(ctx)
    assert outcome.id == "software.backend_missing"
    assert outcome.params == {"backends": "nosuch"}


@pytest.mark.parametrize(("scheme", "library"), [("nfc", "nfc"), ("pcsc", "smartcard")])
def test_a_backend_whose_library_is_missing_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str, library: str
) -> None:
    # The backend module imports its library lazily: it loads without it, yet the
    # backend cannot open a reader. None in sys.modules makes `import nfc` fail here.
    monkeypatch.setitem(sys.modules, library, None)
    ctx = context(tmp_path, reader=f"{scheme}:usb")
    outcome = software.check_backends(ctx)
    assert outcome.id == "software.backend_missing"
    assert outcome.params == {"backends": scheme}
    assert ctx.backends[scheme] is False
    assert library in outcome.data["problems"][scheme]
    assert ctx.backends["sim"] is True


def test_a_backend_with_its_library_is_available(tmp_path: Path) -> None:
    ctx = context(tmp_path, reader="nfc:usb")
    outcome = software.check_backends(ctx)
    assert ctx.backends["nfc"] is True, outcome.data["problems"]
    assert outcome.id == "software.backends_ok"


def test_the_accelerator_in_this_build(tmp_path: Path) -> None:
    from contactless.tlv import IMPLEMENTATION

    outcome = software.check_accelerator(context(tmp_path))
    if IMPLEMENTATION == "c":
        assert outcome.id == "software.accelerator_ok"
    else:  # a pure-Python run of the suite (CONTACTLESS_PUREPYTHON=1)
        assert outcome.id in ("software.accelerator_disabled", "software.accelerator_optional")


# --- service checks ------------------------------------------------------------------------


def test_services_of_other_backends_are_skipped(tmp_path: Path) -> None:
    ctx = context(tmp_path, reader="sim:visa")
    assert service.check_pcscd(ctx).id == "service.not_pcsc"
    assert service.check_nfc(ctx).id == "service.not_nfc"


def test_nfc_access_through_nfcpy_s_udp_device(tmp_path: Path) -> None:
    ctx = context(tmp_path, reader="nfc:udp:127.0.0.1:50999")
    outcome = service.check_nfc(ctx)
    assert outcome.id == "service.nfc_ok"
    assert "udp:127.0.0.1:50999" in outcome.params["device"]


@pytest.mark.parametrize(
    ("uri", "paths"),
    [
        ("nfc:usb", []),
        ("nfc:usb:072f:2200", []),
        ("nfc:tty:USB0:pn532", ["tty:USB0:pn532"]),
        ("nfc:udp:127.0.0.1:5000?x=1", ["udp:127.0.0.1:5000"]),
        (None, []),
    ],
)
def test_nfc_paths(uri: str | None, paths: list[str]) -> None:
    assert service._nfc_paths(uri) == paths


def test_every_nfc_finding_kind_has_an_outcome() -> None:
    from contactless.transport.nfc_diagnostics import FindingKind

    assert {kind.value for kind in FindingKind} == set(service.NFC_OUTCOMES)


# --- link quality --------------------------------------------------------------------------


def stats(
    *,
    completed: int = 50,
    first_try: int = 50,
    succeeded: int = 50,
    latencies: tuple[float, ...] = (1.0,) * 50,
    stopped: str | None = None,
) -> LinkStats:
    attempts = completed + (completed - first_try) + (completed - succeeded) * 2
    return LinkStats(50, completed, first_try, succeeded, attempts, {}, latencies, stopped)


@pytest.mark.parametrize(
    ("measured", "outcome"),
    [
        (stats(), "link.ok"),
        (stats(first_try=49), "link.ok"),  # 98 %: at the pass threshold
        (stats(first_try=48), "link.unsteady"),  # 96 %
        (stats(first_try=45), "link.unsteady"),  # 90 %: at the warn threshold
        (stats(first_try=40, succeeded=50), "link.intermittent"),
        (stats(first_try=10, succeeded=20), "link.failing"),
        (stats(first_try=0, succeeded=0, completed=1, latencies=()), "link.failing"),
        (stats(stopped="card_lost", completed=3), "link.card_lost"),
        (stats(latencies=(300.0,) * 50), "link.slow"),
        (stats(latencies=(1.0,) * 49 + (900.0,)), "link.spikes"),
    ],
)
def test_the_link_verdict(tmp_path: Path, measured: LinkStats, outcome: str) -> None:
    assert link_check.judge(measured, SelftestSettings(), context(tmp_path)).id == outcome


def test_slower_than_the_baseline(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.baseline = baseline(link=BaselineLink(50, 1.0, 1.0, 0.1, 0.2, 0.3))
    slow = stats(latencies=(25.0,) * 50)  # under the absolute limit, 100 times the baseline
    outcome = link_check.judge(slow, SelftestSettings(), ctx)
    assert outcome.id == "link.slower_than_baseline"
    assert outcome.differences[0].field == "link.p95_ms"
    assert link_check.judge(stats(latencies=(0.15,) * 50), SelftestSettings(), ctx).id == "link.ok"


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_a_dead_link_stops_early(tmp_path: Path) -> None:
    started = time.monotonic()
    report = run(
        "sim:visa?hang_after=0",
        config=str(write(tmp_path / "t.toml", "[selftest]\nexchange_timeout = 0.2\n")),
    )
    link = report.result("link.quality")
    assert link.outcome == "link.failing"
    assert link.data["stopped"] == "dead"
    assert link.data["attempts"] == 3  # link_abort_after
    assert time.monotonic() - started < 30  # anti-hang bound, not a timing assertion


# --- host link -----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server
    stop.set()
    thread.join(5)
    server.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def host_context(tmp_path: Path, host: str, extra: str = "") -> Context:
    return context(tmp_path, config=f'[selftest]\nhost = "{host}"\nhost_timeout = 3\n{extra}')


def test_a_listening_host(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    outcome = host_check.check_host(host_context(tmp_path, f"127.0.0.1:{port}"))
    assert outcome.id == "host.ok"
    assert outcome.data["connect_ms"] >= 0


def test_a_closed_port_is_refused(tmp_path: Path) -> None:
    outcome = host_check.check_host(host_context(tmp_path, f"127.0.0.1:{closed_port()}"))
    assert outcome.id == "host.refused"


def test_a_name_that_does_not_resolve(tmp_path: Path) -> None:
    outcome = host_check.check_host(host_context(tmp_path, "no-such-host.invalid:443"))
    assert outcome.id in ("host.unresolved", "host.timeout")


def test_a_slow_connection_warns(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    ctx = host_context(tmp_path, f"127.0.0.1:{port}", "host_slow_ms = 0\n")
    assert host_check.check_host(ctx).id == "host.slow"


def test_no_host_is_skipped(tmp_path: Path) -> None:
    assert host_check.check_host(context(tmp_path)).id == "host.none"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, in PEM files (made with the cryptography
    package when it is installed, else with the openssl command)."""
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        _self_signed_with_cryptography(cert_path, key_path)
    except ImportError:
        if shutil.which("openssl") is None and not os.environ.get("CI"):
            pytest.skip("neither the cryptography package nor the openssl command is available")
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key_path), "-out",
                str(cert_path), "-days", "1", "-subj", "/CN=acquirer test",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:TRUE",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    return cert_path, key_path


def _self_signed_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acquirer test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            try:
                connection.settimeout(5)
                with context.wrap_socket(connection, server_side=True):
                    pass
            except OSError:
                pass  # the client gave up (an untrusted certificate)
            finally:
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], cert
    stop.set()
    thread.join(5)
    server.close()


def test_a_tls_handshake(tmp_path: Path, tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    ctx = host_context(tmp_path, f"127.0.0.1:{port}", f'tls = true\ntls_ca = "{cert}"\n')
    outcome = host_check.check_host(ctx)
    assert outcome.id == "host.tls_ok"
    assert outcome.data["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_an_untrusted_certificate(tmp_path: Path, tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    outcome = host_check.check_host(host_context(tmp_path, f"127.0.0.1:{port}", "tls = true\n"))
    assert outcome.id == "host.tls_untrusted"


def test_tls_with_a_host_that_does_not_speak_it(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    outcome = host_check.check_host(host_context(tmp_path, f"127.0.0.1:{port}", "tls = true\n"))
    assert outcome.id == "host.tls_failed"


# --- reader.firmware -----------------------------------------------------------------------

SIM_DRIVER = "contactless.transport.sim"


def firmware_context(
    tmp_path: Path,
    firmware: str | None,
    *,
    config: str = "",
    before: dict[str, Any] | None = None,
    features: tuple[str, ...] = (),
) -> Context:
    from contactless.selftest.baseline import BaselineReader
    from contactless.transport.base import ReaderIdentity

    ctx = context(tmp_path, config=config)
    ctx.identity = ReaderIdentity("ACS", "ACR122U", firmware, "S1", SIM_DRIVER)
    ctx.firmware = firmware
    ctx.features = features
    if before is not None:
        reader = BaselineReader(
            "pcsc:", "ACS", "ACR122U", before.get("firmware"), "S1",
            before.get("driver", SIM_DRIVER), tuple(before.get("features", ())),
        )  # fmt: skip
        ctx.baseline = baseline(reader=reader)
    return ctx


@pytest.mark.parametrize(
    ("firmware", "config", "before", "features", "expected"),
    [
        ("2.15", "", None, (), "reader.firmware_nothing"),
        (
            "2.15",
            '[selftest]\nsupported_firmware = ["2.*"]\n',
            None,
            (),
            "reader.firmware_supported",
        ),
        (
            "1.03",
            '[selftest]\nsupported_firmware = ["2.*"]\n',
            None,
            (),
            "reader.firmware_unsupported",
        ),
        (None, '[selftest]\nsupported_firmware = ["2.*"]\n', None, (), "reader.firmware_unknown"),
        (
            "2.15",
            '[selftest]\nsupported_drivers = ["acme.*"]\n',
            None,
            (),
            "reader.driver_unsupported",
        ),
        ("2.15", "", {"firmware": "2.15"}, (), "reader.firmware_ok"),
        ("2.16", "", {"firmware": "2.15"}, (), "reader.firmware_changed"),
        (
            "2.16",
            '[selftest]\nsupported_firmware = ["2.1*"]\n',
            {"firmware": "2.15"},
            (),
            "reader.firmware_changed_supported",
        ),
        (None, "", {"firmware": "2.15"}, (), "reader.firmware_unknown"),
        ("2.15", "", {"firmware": "2.15", "driver": "pcsc-ccid 1.4"}, (), "reader.driver_changed"),
        (
            "2.15",
            "",
            {"firmware": "2.15", "features": ("CCID_ESC_COMMAND", "GET_TLV_PROPERTIES")},
            ("GET_TLV_PROPERTIES",),
            "reader.features_missing",
        ),
    ],
)
def test_the_firmware_verdict(
    tmp_path: Path,
    firmware: str | None,
    config: str,
    before: dict[str, Any] | None,
    features: tuple[str, ...],
    expected: str,
) -> None:
    ctx = firmware_context(tmp_path, firmware, config=config, before=before, features=features)
    outcome = reader_check.check_firmware(ctx)
    assert outcome.id == expected
    if before is not None and before.get("firmware") != firmware:
        assert any(d.field == "reader.firmware" for d in outcome.differences)
