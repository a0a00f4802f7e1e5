"""The filter that keeps card data out of nfcpy's DEBUG log (contactless.transport.nfc_logging).

Records go through real loggers and a real handler; the end-to-end check with nfcpy's own
reader stack is in tests/e2e/test_nfc_read.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from contactless.transport import nfc_logging
from contactless.transport.nfc_logging import CardDataFilter, hide_card_data

# A READ RECORD answer as nfcpy logs it: I-block PCB 02, then 70 template with the PAN.
FRAME = "02" + "70105a0847617390010100105f24032812319000"
PAN = "4761739001010010"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, _Collect]]:
    monkeypatch.delenv(nfc_logging.OPT_IN, raising=False)
    logger = logging.getLogger("contactless.test.nfc_logging")
    handler = _Collect()
    logger.addHandler(handler)
    logger.addFilter(CardDataFilter())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    logger.filters.clear()


def test_a_frame_keeps_its_first_byte_and_length_only() -> None:
    assert hide_card_data(f">>> {FRAME} timeout=0.1") == ">>> 02<+20 bytes> timeout=0.1"
    assert PAN not in hide_card_data(FRAME.upper())


def test_short_hex_stays_readable() -> None:
    for text in (
        "<<< 9000 0.001s",
        ">>> a2 timeout=0.1",
        "<<< f23b 0.002s",
        "selected a0000000031010",
        "uid 04a1b2c3d4e5f6",
    ):
        assert hide_card_data(text) == text
    assert hide_card_data("x" + "1" * 15 + "y") == "x" + "1" * 15 + "y"
    assert hide_card_data("1" * 16) == "11<+7 bytes>"  # 8 bytes: a bare PAN


def test_the_filter_rewrites_formatted_records(logged: tuple[logging.Logger, _Collect]) -> None:
    logger, handler = logged
    logger.debug(">>> %s timeout=%s", FRAME, 0.1)
    logger.debug("<<< %s %.3fs", "9000", 0.001)
    logger.debug("plain %s", PAN)
    assert handler.lines == [
        ">>> 02<+20 bytes> timeout=0.1",
        "<<< 9000 0.001s",
        "plain 47<+7 bytes>",
    ]


def test_the_opt_in_leaves_records_whole(
    logged: tuple[logging.Logger, _Collect], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, handler = logged
    monkeypatch.setenv(nfc_logging.OPT_IN, "1")
    logger.debug(">>> %s", FRAME)
    monkeypatch.setenv(nfc_logging.OPT_IN, "0")
    logger.debug(">>> %s", FRAME)
    assert handler.lines == [f">>> {FRAME}", ">>> 02<+20 bytes>"]


def test_a_broken_record_is_left_for_logging_to_report(
    logged: tuple[logging.Logger, _Collect],
) -> None:
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "%d items", ("many",), None)
    assert CardDataFilter().filter(record)
    assert (record.msg, record.args) == ("%d items", ("many",))


def test_every_nfcpy_module_logger_gets_the_filter_once() -> None:
    nfc = pytest.importorskip("nfc")
    from contactless.transport.nfc import import_nfcpy

    import_nfcpy()
    import_nfcpy()
    names = nfc_logging.nfcpy_logger_names(nfc)
    # The exchange log, the UDP and USB drivers (imported only when a device opens), ISO-DEP.
    for name in ("nfc.clf", "nfc.clf.udp", "nfc.clf.pn533", "nfc.clf.acr122", "nfc.tag.tt4"):
        assert name in names
    for name in names:
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, CardDataFilter)]
        assert len(filters) == 1, name
