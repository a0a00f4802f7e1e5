"""The EMV read (and optional test transaction) as a sans-I/O generator.

:func:`read_flow` yields each :class:`~contactless.apdu.Command` to send and is sent back
the card's :class:`~contactless.apdu.Response`; when it is done, it returns a
:class:`~contactless.emv.card.CardData` (as ``StopIteration.value``). It never touches a
reader, so the same flow runs over a real reader (``emv.driver.run``), the emulator, a
replayed trace, or a test feeding answers by hand::

    flow = read_flow(config)
    command = next(flow)
    while True:
        try:
            command = flow.send(card.exchange(command))
        except StopIteration as done:
            card_data = done.value
            break

The steps (EMV Book 1 section 12, Book 3 sections 6 and 10, Contactless Book B):

1. SELECT the PPSE ``2PAY.SYS.DDF01``; its directory entries (61 in BF0C) that match a
   terminal AID become candidates, ordered by Application Priority Indicator (87; entries
   without one last; ties keep the card's order). No PPSE (``6A82``), or no match in it:
   the terminal's own AIDs are tried in its order instead.
2. Final SELECT of the first candidate that answers ``9000`` with a matching DF name.
3. GET PROCESSING OPTIONS with the PDOL (9F38) data; ``6985`` moves on to the next
   candidate (Book B: conditions of use not satisfied).
4. READ RECORD for every record in the AFL.
5. With ``transaction=True``: GENERATE AC with the CDOL1 (8C) data, unless the GPO answer
   already carried a cryptogram (qVSDC-style cards compute it there).

Status words other than ``9000`` raise :class:`~contactless.errors.StatusWordError` naming
the command (``61xx``/``6Cxx`` never reach the flow: ``session.Card`` resolves them).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .. import sw
from ..apdu import Command, Response
from ..errors import (
    ContactlessError,
    LocalProtocolError,
    RemoteProtocolError,
    StatusWordError,
    TlvError,
)
from ..hexutil import to_hex
from ..tlv import Tlv, TlvList, build, decode, encode, find
from ..tlv.bitfields import AflEntry, decode_afl
from ..tlv.dol import build_dol, parse_dol
from ..tlv.format import decode_text
from .card import (
    CardData,
    Cryptogram,
    RecordRead,
    ResponseData,
    ResponseKind,
    card_data_from,
    cryptogram_fields,
    cryptogram_from,
)
from .terminal import CRYPTOGRAM_P1, SupportedAid, TerminalConfig

__all__ = [
    "PPSE",
    "Candidate",
    "ReadFlow",
    "candidates_from_directory",
    "fallback_candidates",
    "read_flow",
]

#: The Proximity Payment System Environment's name (Book B section 3.3.2).
PPSE = b"2PAY.SYS.DDF01"

#: GET PROCESSING OPTIONS answers after which the next candidate is tried (Book B 3.3.3:
#: "conditions of use not satisfied" means this application cannot do this transaction).
GPO_TRY_NEXT: frozenset[int] = frozenset({0x6985})

#: A flow: yields commands, is sent responses, returns the card data.
ReadFlow = Generator[Command, Response, CardData]

_LE = 256  # "up to 256 bytes" (Le = 00): the card returns what it has

_T = TypeVar("_T")
#: One step of the flow: a sub-generator that returns ``_T``.
Step = Generator[Command, Response, _T]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An application to try: the AID to SELECT, how it was found, and the terminal AID
    it matched. ``priority`` is the Application Priority Indicator's low nibble (1 is the
    highest; ``None`` for none); ``from_directory`` is False for a terminal AID tried
    directly (then a longer DF name is accepted when ``supported.partial``)."""

    aid: bytes
    supported: SupportedAid
    label: str | None = None
    priority: int | None = None
    kernel: bytes | None = None
    from_directory: bool = True

    def accepts(self, df_name: bytes | None) -> bool:
        """Whether a SELECT answer naming ``df_name`` (84) is this application."""
        if df_name is None:  # no DF name to check: trust the card's 9000
            return True
        if self.from_directory:
            return df_name == self.aid
        return self.supported.matches(df_name)


def _select(aid: bytes) -> Command:
    return Command(0x00, 0xA4, 0x04, 0x00, aid, le=_LE)


def _entry_value(entry: Tlv, tag: bytes) -> bytes | None:
    for child in entry.children or ():
        if child.tag_bytes == tag:
            return child.value
    return None


def candidates_from_directory(
    fci: Iterable[Tlv], supported: Sequence[SupportedAid]
) -> list[Candidate]:
    """Candidates from a PPSE answer (its FCI ``6F`` > ``A5`` > ``BF0C`` > ``61`` entries):
    entries whose ADF name (4F) matches a terminal AID exactly, or partially when that AID
    allows it, ordered by priority (87 low nibble, 1 first; 0 or absent after every entry
    with one; ties keep the card's order). Entries without a valid ADF name (5-16 bytes)
    are skipped, as Book B requires."""
    found: list[Candidate] = []
    directory = find(fci, "6F/A5/BF0C")
    for entry in (directory.children or ()) if directory is not None else ():
        if entry.tag_bytes != b"\x61":
            continue
        aid = _entry_value(entry, b"\x4f")
        if aid is None or not 5 <= len(aid) <= 16:
            continue
        match = next((s for s in supported if s.matches(aid)), None)
        if match is None:
            continue
        label = _entry_value(entry, b"\x50")
        priority = _entry_value(entry, b"\x87")
        nibble = priority[0] & 0x0F if priority else 0
        found.append(
            Candidate(
                aid=aid,
                supported=match,
                label=decode_text(label) if label else None,
                priority=nibble or None,
                kernel=_entry_value(entry, b"\x9f\x2a"),
            )
        )
    # sorted() is stable: equal priorities keep the card's order.
    return sorted(found, key=lambda c: (c.priority is None, c.priority or 0))


def fallback_candidates(supported: Sequence[SupportedAid]) -> list[Candidate]:
    """The terminal's AIDs, in its order, to SELECT one by one (no usable PPSE)."""
    return [Candidate(s.aid, s, s.label or None, None, None, False) for s in supported]


def _in_answer(error: TlvError, command: Command) -> TlvError:
    return TlvError(
        f"{error.reason} (in the answer to {command.describe()})",
        offset=error.offset,
        tag=error.tag,
    )


def _decode(response: Response, command: Command) -> TlvList:
    try:
        return decode(response.data)
    except TlvError as error:
        raise _in_answer(error, command) from None


def _single_template(nodes: TlvList, allowed: tuple[bytes, ...], what: str) -> Tlv:
    """The one top-level object of an answer, which must be one of ``allowed``."""
    names = " or ".join(to_hex(tag) for tag in allowed)
    if len(nodes) != 1 or nodes[0].tag_bytes not in allowed:
        found = ", ".join(node.tag_hex for node in nodes) or "nothing"
        raise RemoteProtocolError(f"{what} must be one {names} template, found {found}")
    return nodes[0]


class _Exchanges:
    """What the flow has sent and kept so far."""

    def __init__(self) -> None:
        self.count = 0
        self.responses: list[ResponseData] = []

    def exchange(self, command: Command) -> Generator[Command, Response, Response]:
        response = yield command
        if not isinstance(response, Response):
            raise LocalProtocolError(
                f"the EMV flow must be sent a Response for {command.describe()}, "
                f"got {type(response).__name__}"
            )
        self.count += 1
        return response

    def keep(self, command: Command, kind: ResponseKind, nodes: TlvList) -> None:
        self.responses.append(ResponseData(command.describe(), kind, nodes))


def _pdol_data(fci: TlvList, terminal: dict[bytes, bytes], aid: bytes, command: Command) -> bytes:
    pdol = find(fci, "6F/A5/9F38")
    if pdol is None:
        return b""
    try:
        entries = parse_dol(pdol.value)
    except TlvError as error:
        raise TlvError(
            f"{error.reason} (in the PDOL, tag 9F38, of the answer to {command.describe()})",
            offset=error.offset,
            tag=error.tag,
        ) from None
    return build_dol(entries, terminal, aid=aid)


@dataclass(frozen=True, slots=True)
class _Processing:
    """The GET PROCESSING OPTIONS answer, split."""

    aip: bytes
    afl: list[AflEntry]
    cryptogram: Cryptogram | None


def _processing_options(nodes: TlvList, command: Command) -> _Processing:
    what = f"the answer to {command.describe()}"
    template = _single_template(nodes, (b"\x80", b"\x77"), what)
    if template.tag_bytes == b"\x80":
        # Format 1: AIP (2 bytes) followed by the AFL (4 bytes per entry).
        value = template.value
        if len(value) < 2 or (len(value) - 2) % 4:
            raise RemoteProtocolError(
                f"{what}: format 1 (80) must hold a 2-byte AIP and 4-byte AFL entries, "
                f"got {len(value)} bytes"
            )
        aip, afl_bytes, cryptogram = value[:2], value[2:], None
    else:
        aip_node = find(template.children or (), b"\x82")
        if aip_node is None:
            raise RemoteProtocolError(f"{what}: format 2 (77) has no AIP (82)")
        if len(aip_node.value) != 2:
            raise RemoteProtocolError(
                f"{what}: AIP (82) must be 2 bytes, got {len(aip_node.value)}"
            )
        afl_node = find(template.children or (), b"\x94")
        aip = aip_node.value
        afl_bytes = afl_node.value if afl_node is not None else b""
        cryptogram = cryptogram_from(template.children or (), command.describe())
    try:
        afl = decode_afl(afl_bytes)
    except RemoteProtocolError as error:
        raise RemoteProtocolError(f"{what}: {error.message}") from None
    return _Processing(aip, afl, cryptogram)


def _record_command(sfi: int, number: int) -> Command:
    # P2: SFI in bits 8-4, then 100 = "P1 is a record number" (ISO 7816-4 table 49).
    return Command(0x00, 0xB2, number, (sfi << 3) | 0x04, le=_LE)


def _record_template(nodes: TlvList, sfi: int, number: int) -> Tlv:
    if len(nodes) == 1 and nodes[0].tag_bytes == b"\x70":
        return nodes[0]
    found = ", ".join(node.tag_hex for node in nodes) or "no data"
    raise RemoteProtocolError(
        f"READ RECORD SFI {sfi} record {number}: the record is not a 70 template (found {found})",
        remedy="the card's data is malformed: try another card",
    )


def _generate_ac_answer(nodes: TlvList, command: Command) -> Cryptogram:
    what = f"the answer to {command.describe()}"
    template = _single_template(nodes, (b"\x80", b"\x77"), what)
    if template.tag_bytes == b"\x80":
        # Format 1: CID (1), ATC (2), AC (8), then the optional Issuer Application Data.
        value = template.value
        if len(value) < 11:
            raise RemoteProtocolError(
                f"{what}: format 1 (80) must hold CID, ATC and an 8-byte cryptogram "
                f"(11 bytes or more), got {len(value)} bytes"
            )
        return cryptogram_fields(
            value[:1], value[1:3], value[3:11], value[11:] or None, command.describe()
        )
    cryptogram = cryptogram_from(template.children or (), command.describe())
    if cryptogram is None:
        raise RemoteProtocolError(f"{what}: format 2 (77) has no Application Cryptogram (9F26)")
    return cryptogram


def _status_error(response: Response, command: Command) -> StatusWordError:
    """The error :func:`sw.check` raises for a non-9000 answer, to keep for later."""
    try:
        sw.check(response, command)
    except StatusWordError as error:
        return error
    raise LocalProtocolError(f"{response.sw:04X} to {command.describe()} is not an error")


def _no_application(error: ContactlessError | None, tried: int) -> ContactlessError:
    remedy = (
        "the card has none of the terminal's applications: add its AID to the [[aid]] list "
        "of the terminal config, or try another card"
    )
    if isinstance(error, StatusWordError):
        # A refused GPO (6985) is not a missing application: keep its own remedy.
        selecting = (error.command or "").startswith("SELECT")
        return StatusWordError(
            error.sw1,
            error.sw2,
            f"no application could be selected ({tried} tried; last: {error.meaning})",
            command=error.command,
            remedy=remedy if selecting else error.remedy,
        )
    last = f"; last: {error.message}" if error is not None else ""
    return RemoteProtocolError(
        f"no application could be selected ({tried} tried{last})", remedy=remedy
    )


def _candidates(exchanges: _Exchanges, config: TerminalConfig) -> Step[list[Candidate]]:
    """Step 1: SELECT the PPSE and build the candidate list (or fall back to the AIDs)."""
    command = _select(PPSE)
    response = yield from exchanges.exchange(command)
    candidates: list[Candidate] = []
    if response.sw != 0x6A82:  # 6A82: no PPSE on this card
        sw.check(response, command)
        nodes = _decode(response, command)
        exchanges.keep(command, "directory", nodes)
        candidates = candidates_from_directory(nodes, config.supported_aids)
    return candidates or fallback_candidates(config.supported_aids)


def _start_application(
    exchanges: _Exchanges, candidates: list[Candidate], terminal: dict[bytes, bytes]
) -> Step[tuple[bytes, _Processing]]:
    """Steps 2-3: final SELECT and GET PROCESSING OPTIONS, moving down the list on failure.
    Returns the application's AID (its DF name) and the processing options."""
    last_error: ContactlessError | None = None
    for candidate in candidates:
        command = _select(candidate.aid)
        response = yield from exchanges.exchange(command)
        if not response.ok:  # a warning (6283: application blocked) is a failure here too
            last_error = _status_error(response, command)
            continue
        fci = _decode(response, command)
        df_name = find(fci, "6F/84")
        if find(fci, "6F") is None or not candidate.accepts(df_name.value if df_name else None):
            exchanges.keep(command, "select", fci)
            last_error = RemoteProtocolError(
                f"the answer to {command.describe()} is not the FCI of that application"
            )
            continue
        aid = df_name.value if df_name is not None else candidate.aid
        pdol_data = _pdol_data(fci, terminal, aid, command)
        gpo = Command(0x80, 0xA8, 0x00, 0x00, encode([build(b"\x83", pdol_data)]), le=_LE)
        response = yield from exchanges.exchange(gpo)
        if response.sw in GPO_TRY_NEXT:
            exchanges.keep(command, "select", fci)
            last_error = _status_error(response, gpo)
            continue
        sw.check(response, gpo)
        exchanges.keep(command, "fci", fci)
        gpo_nodes = _decode(response, gpo)
        exchanges.keep(gpo, "gpo", gpo_nodes)
        return aid, _processing_options(gpo_nodes, gpo)
    raise _no_application(last_error, len(candidates))


def _read_records(exchanges: _Exchanges, afl: list[AflEntry]) -> Step[list[RecordRead]]:
    """Step 4: READ RECORD for every record the AFL names, in AFL order."""
    records: list[RecordRead] = []
    for entry in afl:
        for number in entry.records:
            command = _record_command(entry.sfi, number)
            response = yield from exchanges.exchange(command)
            sw.check(response, command)
            nodes = _decode(response, command)
            _record_template(nodes, entry.sfi, number)
            exchanges.keep(command, "record", nodes)
            records.append(RecordRead(entry.sfi, number, number - entry.first < entry.oda))
    return records


def _generate_ac(
    exchanges: _Exchanges, config: TerminalConfig, terminal: dict[bytes, bytes], aid: bytes
) -> Step[Cryptogram]:
    """Step 5: GENERATE AC with the CDOL1 data, asking for ``config.cryptogram``."""
    cdol1 = _first_in_records(exchanges.responses, b"\x8c")
    if cdol1 is None:
        raise RemoteProtocolError(
            "cannot run GENERATE AC: the card's records have no CDOL1 (8C)",
            remedy="this card does not support a test transaction: read it without one",
        )
    try:
        entries = parse_dol(cdol1)
    except TlvError as error:
        raise TlvError(
            f"{error.reason} (in the CDOL1, tag 8C)", offset=error.offset, tag=error.tag
        ) from None
    p1 = CRYPTOGRAM_P1[config.cryptogram]
    command = Command(0x80, 0xAE, p1, 0x00, build_dol(entries, terminal, aid=aid), le=_LE)
    response = yield from exchanges.exchange(command)
    sw.check(response, command)
    nodes = _decode(response, command)
    exchanges.keep(command, "generate_ac", nodes)
    return _generate_ac_answer(nodes, command)


def read_flow(config: TerminalConfig, *, transaction: bool = False) -> ReadFlow:
    """The EMV read as a generator: yields commands, is sent responses, returns
    :class:`~contactless.emv.card.CardData` (see the module docstring for the steps).

    With ``transaction=True`` a cryptogram is requested (GENERATE AC asking for
    ``config.cryptogram``) when the GPO answer did not already carry one. Date, time and
    the unpredictable number come from ``config``'s clock and RNG, once per flow, so the
    PDOL and the CDOL1 carry the same ones.
    """
    exchanges = _Exchanges()
    # One clock reading: the date sent as 9A is also the date the card's validity is judged on.
    when = config.now()
    terminal = config.terminal_data(when, config.random_bytes(4))
    candidates = yield from _candidates(exchanges, config)
    aid, processing = yield from _start_application(exchanges, candidates, terminal)
    records = yield from _read_records(exchanges, processing.afl)
    cryptogram = processing.cryptogram
    if transaction and cryptogram is None:
        cryptogram = yield from _generate_ac(exchanges, config, terminal, aid)
    return card_data_from(
        aid,
        exchanges.responses,
        aip=processing.aip,
        afl=processing.afl,
        records=records,
        apdus=exchanges.count,
        cryptogram=cryptogram,
        transaction_date=when.date(),
    )


def _first_in_records(responses: Iterable[ResponseData], tag: bytes) -> bytes | None:
    for response in responses:
        if response.kind == "record":
            node = find(response.tlvs, tag)
            if node is not None:
                return node.value
    return None
