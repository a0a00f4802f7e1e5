"""The status-word table: size and coverage, pattern lookups, EMV context, check()."""

from __future__ import annotations

import pytest

from contactless.apdu import Command, Response
from contactless.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StatusWordError,
)
from contactless.sw import (
    CATEGORIES,
    STATUS_WORDS,
    StatusWord,
    StatusWordRule,
    check,
    describe,
    lookup,
    rules_for,
)

READ_RECORD = Command(0x00, 0xB2, 0x02, 0x0C, le=256)
VERIFY = Command(0x00, 0x20, 0x00, 0x80, bytes.fromhex("241234FFFFFFFFFF"))
SELECT_VISA = Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000000031010"), le=256)
GPO = Command(0x80, 0xA8, 0x00, 0x00, b"\x83\x00", le=256)


# --- the table ---------------------------------------------------------------------------


def test_table_has_at_least_60_rows_with_valid_categories() -> None:
    assert len(STATUS_WORDS) >= 60
    assert all(rule.category in CATEGORIES for rule in STATUS_WORDS)
    assert all(rule.meaning and rule.meaning == rule.meaning.strip() for rule in STATUS_WORDS)


def test_table_rows_are_unique() -> None:
    keys = [(rule.pattern.upper(), rule.ins) for rule in STATUS_WORDS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "pattern",
    ["9000", "61xx", "6Cxx", "62xx", "63xx", "63Cx", "6700", "6B00", "6D00", "6E00", "6F00", "9xxx"]
    + [f"69{n:02X}" for n in range(0x81, 0x87)]
    + [f"6A{n:02X}" for n in range(0x80, 0x89)],
)
def test_required_status_words_are_in_the_table(pattern: str) -> None:
    assert any(r.pattern.upper() == pattern.upper() and r.ins is None for r in STATUS_WORDS)


def test_patterns_are_data_turned_into_mask_and_value() -> None:
    rule = StatusWordRule("63Cx", "warning", "counter {x}")
    assert (rule.mask, rule.value, rule.specificity) == (0xFFF0, 0x63C0, 12)
    assert rule.matches(0x63C7) and not rule.matches(0x6307)
    assert StatusWordRule("9xxx", "proprietary", "p").mask == 0xF000
    with pytest.raises(ValueError):
        StatusWordRule("63C", "warning", "too short")
    with pytest.raises(ValueError):
        StatusWordRule("63CZ", "warning", "not hex")


EXACT_ROWS = [rule for rule in STATUS_WORDS if rule.specificity == 16]
PATTERN_ROWS = [rule for rule in STATUS_WORDS if rule.specificity < 16]


@pytest.mark.parametrize("rule", EXACT_ROWS, ids=lambda r: f"{r.pattern}-{r.ins}")
def test_every_exact_row_is_what_lookup_returns(rule: StatusWordRule) -> None:
    # No row is shadowed: an exact status word comes back with its own meaning.
    status = lookup(rule.value >> 8, rule.value & 0xFF, ins=rule.ins)
    assert status.meaning == rule.meaning
    assert status.category == rule.category
    assert status.remedy == rule.remedy


@pytest.mark.parametrize("rule", PATTERN_ROWS, ids=lambda r: f"{r.pattern}-{r.ins}")
def test_every_pattern_row_is_reachable(rule: StatusWordRule) -> None:
    free = ~rule.mask & 0xFFFF
    reached = [
        sw
        for sw in range(rule.value, rule.value + free + 1)
        if sw & rule.mask == rule.value and rules_for(sw, ins=rule.ins)[0] is rule
    ]
    assert reached, f"{rule.pattern} is shadowed by more specific rows everywhere"


# --- lookups -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sw", "ins", "meaning", "category"),
    [
        (0x9000, None, "normal processing", "success"),
        (0x611F, None, "31 response bytes are still available (send GET RESPONSE)", "transport"),
        (0x6100, None, "256 or more response bytes are still available", "transport"),
        (
            0x6C1A,
            None,
            "wrong Le: 26 bytes are available (re-send the command with Le=1A)",
            "transport",
        ),
        (0x6C00, None, "wrong Le: 256 bytes are available", "transport"),
        (0x63C2, None, "counter is 2 (for VERIFY: 2 tries left)", "warning"),
        (0x63C2, 0x20, "wrong PIN: 2 tries left", "warning"),
        (0x63C1, 0x20, "wrong PIN: 1 try left", "warning"),
        (0x63C0, 0x20, "wrong PIN: no tries left, the PIN is now blocked", "warning"),
        (0x6310, None, "warning: memory changed (SW2 10)", "warning"),
        (0x6210, None, "triggering by the card", "warning"),
        (0x6283, None, "selected file deactivated (EMV: the application is blocked)", "warning"),
        (0x6283, 0xA4, "application blocked", "warning"),
        (0x6581, None, "memory failure", "execution_error"),
        (0x6642, None, "security-related issue (SW2 42)", "execution_error"),
        (0x6700, None, "wrong length", "checking_error"),
        (0x6985, 0xA8, "the card refuses this transaction here", "checking_error"),
        (0x6A82, None, "file or application not found", "checking_error"),
        (0x6A82, 0xA4, "application not found on the card", "checking_error"),
        (0x6A81, 0xA4, "card blocked", "checking_error"),
        (0x6A83, 0xB2, "record not found", "checking_error"),
        (0x6A88, 0xCA, "data object not found", "checking_error"),
        (0x6A99, None, "wrong parameters P1-P2 (SW2 99)", "checking_error"),
        (0x6B00, None, "wrong parameters P1-P2 (offset outside the EF)", "checking_error"),
        (0x6D00, None, "instruction code not supported", "checking_error"),
        (0x6E00, None, "class not supported", "checking_error"),
        (0x6F00, None, "no precise diagnosis", "checking_error"),
        (0x6F12, None, "no precise diagnosis (proprietary qualifier 12)", "checking_error"),
        (0x9123, None, "proprietary status word", "proprietary"),
        (0x9FFF, None, "proprietary status word", "proprietary"),
    ],
)
def test_lookup(sw: int, ins: int | None, meaning: str, category: str) -> None:
    status = lookup(sw >> 8, sw & 0xFF, ins=ins)
    assert meaning in status.meaning
    assert status.category == category
    assert status.sw == sw and status.hex == f"{sw:04X}"
    assert status.ok == (category == "success")
    assert (status.error is None) == (category == "success")
    if status.error is not None:
        assert issubclass(status.error, StatusWordError)


def test_context_rows_only_apply_to_their_instruction() -> None:
    assert "wrong PIN" in lookup(0x63, 0xC3, ins=0x20).meaning
    assert "wrong PIN" not in lookup(0x63, 0xC3, ins=0xB2).meaning
    assert lookup(0x6A, 0x82, ins=0xB2).meaning == "file or application not found"


def test_rules_for_lists_matching_rows_best_first() -> None:
    rules = rules_for(0x63C2, ins=0x20)
    assert [(r.pattern, r.ins) for r in rules] == [("63Cx", 0x20), ("63Cx", None), ("63xx", None)]
    assert rules_for(0x1234) == []


@pytest.mark.parametrize("sw1", range(256))
def test_every_pair_has_an_answer_and_never_crashes(sw1: int) -> None:
    for sw2 in (0x00, 0x01, 0x7F, 0x80, 0x9C, 0xC5, 0xFF):
        status = lookup(sw1, sw2)
        assert status.category in CATEGORIES and status.meaning
        valid = 0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F
        assert status.known == valid, f"{sw1:02X}{sw2:02X}"


def test_unknown_status_words_are_described_not_raised() -> None:
    status = lookup(0x12, 0x34)
    assert status.category == "unknown" and not status.known
    assert status.meaning.startswith("unknown status word 1234")
    assert "NULL procedure byte" in lookup(0x60, 0x00).meaning
    assert describe(0xA5A5).startswith("A5A5: unknown status word")


@pytest.mark.parametrize(
    "args",
    [(256, 0), (-1, 0), (0x90, 0x100), ("90", 0), (0x90, None), (True, 0), (0x90, 0.0)],
)
def test_lookup_rejects_non_bytes(args: tuple[object, object]) -> None:
    with pytest.raises(LocalProtocolError):
        lookup(*args)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        lookup(0x90, 0x00, ins=0x100)


# --- describe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sw", [0x6A82, "6A82", "6a 82", "6A:82", b"\x6a\x82", bytearray(b"\x6a\x82")]
)
def test_describe_accepts_int_hex_and_bytes(sw: int | str | bytes) -> None:
    assert describe(sw) == "6A82: file or application not found"


def test_describe_uses_the_instruction_for_emv_meanings() -> None:
    assert describe(0x6983, ins=0x20) == "6983: PIN blocked"
    assert describe("63C0", ins=0x20) == "63C0: wrong PIN: no tries left, the PIN is now blocked"


@pytest.mark.parametrize("sw", ["6A8", "6A8200", "", "zz00", 0x10000, -1, b"\x90", None, True])
def test_describe_rejects_malformed_input(sw: object) -> None:
    with pytest.raises(LocalProtocolError):
        describe(sw)  # type: ignore[arg-type]


def test_status_word_str_is_the_description() -> None:
    status = lookup(0x6A, 0x83)
    assert isinstance(status, StatusWord)
    assert str(status) == "6A83: record not found"


# --- check -------------------------------------------------------------------------------


def test_check_returns_the_response_on_success() -> None:
    response = Response(bytes.fromhex("9F170103"), 0x90, 0x00)
    assert check(response, READ_RECORD) is response
    parsed = check(bytes.fromhex("9F1701039000"))
    assert parsed == response


def test_check_raises_with_meaning_and_command_name() -> None:
    with pytest.raises(StatusWordError) as caught:
        check(Response(b"", 0x6A, 0x83), READ_RECORD)
    error = caught.value
    assert (error.sw1, error.sw2, error.sw) == (0x6A, 0x83, 0x6A83)
    assert error.command == "READ RECORD SFI 1 record 2"
    assert "record not found" in error.meaning
    assert str(error).startswith(
        "card answered 6A83 to READ RECORD SFI 1 record 2: record not found"
    )
    assert isinstance(error, RemoteProtocolError)


def test_check_carries_the_remedy_when_there_is_one() -> None:
    with pytest.raises(StatusWordError) as caught:
        check(bytes.fromhex("6983"), VERIFY)
    error = caught.value
    assert error.meaning == "PIN blocked" and error.command == "VERIFY"
    assert error.remedy is not None and "another card" in error.remedy
    assert error.remedy in str(error)

    with pytest.raises(StatusWordError) as caught:
        check(Response(b"", 0x6A, 0x82), SELECT_VISA)
    assert caught.value.command == "SELECT A0000000031010"
    assert caught.value.remedy is not None and "another card" in caught.value.remedy

    with pytest.raises(StatusWordError) as caught:
        check(Response(b"", 0x69, 0x85), GPO)
    assert caught.value.remedy is not None and "insert or swipe" in caught.value.remedy


def test_check_without_command_and_without_remedy() -> None:
    with pytest.raises(StatusWordError) as caught:
        check(Response(b"", 0x6A, 0x88))
    assert caught.value.command is None and caught.value.remedy is None
    assert str(caught.value) == "card answered 6A88: referenced data or reference data not found"


@pytest.mark.parametrize("sw", [0x611F, 0x6C10, 0x6283, 0x63C1, 0x9100, 0x1234])
def test_check_raises_for_everything_but_success(sw: int) -> None:
    # 61xx/6Cxx reaching check() means the session did not resolve them: still an error.
    with pytest.raises(StatusWordError) as caught:
        check(Response(b"", sw >> 8, sw & 0xFF), READ_RECORD)
    assert caught.value.sw == sw


def test_check_rejects_what_is_not_a_response() -> None:
    with pytest.raises(LocalProtocolError):
        check("9000")  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="SW1 SW2"):
        check(b"\x90")
