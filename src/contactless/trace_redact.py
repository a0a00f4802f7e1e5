"""Redaction of APDU traces: take the card's identity out, keep the trace replayable.

:func:`redact` finds every PAN the card gave (Application PAN 5A, Track 2 57 and 9F6B,
Track 1 56) and every cardholder name (5F20, 9F0B, the name field of Track 1), then:

- replaces each PAN, everywhere its digits appear (packed BCD at any nibble, or ASCII, in
  commands, answers, events and header text), by one substitute that keeps the first 6
  and last 4 digits and has a valid Luhn check digit; the same PAN always gets the same
  substitute, so a replayed read still finds matching data in 5A and Track 2;
- replaces the cardholder name by a fixed placeholder, re-encoding the TLV lengths of the
  answer (and, for answers split by ``61xx``/``6Cxx``, the announced lengths and the Le of
  the follow-up commands) so the trace still decodes and replays;
- replaces the discretionary data of Track 1 and Track 2 (which may hold a static CVV)
  by zeros of the same length, also in answers that do not decode (found by the tracks'
  own patterns: ``^`` separators in text, a ``D`` separator in BCD);
- replaces the value of every other tag the tag dictionary marks sensitive for any scheme
  (:func:`~contactless.tlv.tags.sensitive_tags`: Track 3 58, Name of an Individual 5B,
  identification card tracks 5F21-5F23, PIN data 99, UnionPay's Cardholder ID Number 9F61,
  Mastercard's DD Card tracks DF812A/DF812B) by ``0`` characters (text formats) or zero
  bytes of the same length, so the TLV and every length in the trace stay valid; and a PAN,
  track or name that has not its expected shape is blanked the same way rather than left;
- replaces the PIN block of a VERIFY command by a fixed placeholder of the same length
  (replay compares a redacted trace's VERIFY data loosely).

What it cannot hide is documented in docs/trace-format.md: certificates and cryptograms
were computed over the real data, and a PAN the card only gives encrypted stays as it is.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

from .apdu import PIN_DATA_INS
from .errors import ContactlessError, LocalProtocolError
from .tlv import Tlv, TlvList, decode, encode, walk
from .tlv.tags import all_tags, sensitive_tags
from .trace import Entry, Exchange, Trace, TraceEvent

__all__ = [
    "NAME_PLACEHOLDERS",
    "PIN_BLOCK_PLACEHOLDER",
    "AnswerChain",
    "RedactionReport",
    "answer_chains",
    "luhn_valid",
    "pan_forms",
    "pin_block_size",
    "redact",
    "redact_pin_block",
    "substitute_pan",
]

#: What each name tag's value becomes (9F0B is "ans 27-45": padded to its minimum length).
NAME_PLACEHOLDERS: Final[dict[bytes, bytes]] = {
    b"\x5f\x20": b"REDACTED/CARDHOLDER",
    b"\x9f\x0b": b"REDACTED/CARDHOLDER".ljust(27),
    b"\x5b": b"REDACTED/CARDHOLDER",  # Name of an Individual (ISO 7816-6)
}
#: The placeholder in the name field of Track 1 and wherever else a name's text appears.
TEXT_PLACEHOLDER: Final = b"REDACTED/CARDHOLDER"

#: PAN lengths redaction recognises (ISO/IEC 7812: 12-19 digits; shorter numbers cannot
#: keep 6 + 4 digits and still hide any).
_PAN_LENGTHS: Final = range(12, 20)
#: Names shorter than this are not searched for as raw text (too likely to hit by chance).
_MIN_NAME_SEARCH = 4

#: Track 2 in BCD (PAN, D, YYMM, service code, discretionary data): Track 2 Equivalent Data,
#: Track 2 Data, Track 2 of an identification card.
_TRACK2_TAGS: Final = (b"\x57", b"\x9f\x6b", b"\x5f\x22")
#: Track 1 as text (B PAN ^ NAME ^ YYMM, service code, discretionary data): Track 1 Data,
#: Track 1 of an identification card.
_TRACK1_TAGS: Final = (b"\x56", b"\x5f\x21")
#: 9F6B is Track 2 Data for most schemes but Visa's Card CVM Limit, which the transaction
#: flow reads (zeroed, it would change the CVM decision and the replayed GENERATE AC): a
#: 9F6B that is no Track 2 is kept.
_KEPT_UNLESS_TRACK2: Final = (b"\x9f\x6b",)
_PAN_TAG: Final = b"\x5a"
#: Discretionary data objects of their own: Track 1 (ans) and Track 2 (cn).
_DISCRETIONARY_TEXT: Final = b"\x9f\x1f"
_DISCRETIONARY_DIGITS: Final = b"\x9f\x20"

_MORE_DATA = 0x61
_WRONG_LE = 0x6C
_GET_RESPONSE = 0xC0


@dataclass(frozen=True, slots=True)
class RedactionReport:
    """What :func:`redact` changed (counts only: it never keeps the real values)."""

    pans: int = 0
    names: int = 0
    answers_changed: int = 0


# --- PANs ---------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check (ISO/IEC 7812-1 annex B)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def substitute_pan(pan: str) -> str:
    """The stand-in for ``pan``: same length, same first 6 and last 4 digits, the digits
    between them zeros (nines if that would give the PAN itself) except one chosen so the
    whole number passes the Luhn check. It depends only on what a masked PAN shows.

    >>> substitute_pan("4761739001010010")
    '4761730000010010'
    """
    if not (pan.isascii() and pan.isdigit() and len(pan) in _PAN_LENGTHS):
        raise LocalProtocolError(f"a PAN to substitute must be 12-19 digits, got {len(pan)}")
    head, tail, hidden = pan[:6], pan[-4:], len(pan) - 10
    for filler in "09":
        for digit in "0123456789":
            candidate = head + filler * (hidden - 1) + digit + tail
            if candidate != pan and luhn_valid(candidate):
                return candidate
    raise LocalProtocolError("no substitute PAN found")  # unreachable: Luhn fixes one digit


def pan_forms(data: bytes, pan: str) -> list[str]:
    """How ``pan`` appears in ``data``: ``"BCD"`` (packed, at any nibble) and/or
    ``"ASCII"``; empty when it does not."""
    found = []
    if pan in data.hex().upper():
        found.append("BCD")
    if pan.encode("ascii") in data:
        found.append("ASCII")
    return found


def _digits(value: bytes) -> str:
    return value.hex().upper().rstrip("F")


def _pan_from_track2(value: bytes) -> str | None:
    pan, separator, _ = value.hex().upper().partition("D")
    return pan if separator else None


def _split_track1(value: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``B<PAN>^<NAME>^<rest>`` as (PAN, name, rest), or None for another shape."""
    parts = value.split(b"^")
    if len(parts) != 3 or parts[0][:1] not in (b"B", b"b"):
        return None
    return parts[0][1:], parts[1], parts[2]


# --- answers split over several exchanges -------------------------------------------------


@dataclass
class AnswerChain:
    """One logical answer: an exchange, plus the re-issued command after ``6Cxx`` and the
    GET RESPONSE rounds after ``61xx`` that complete it (T=0). ``indexes`` are positions
    in the trace's entries; the SW2 of each answer but the last announced a length, and
    so did the Le of each command but the first."""

    indexes: list[int]
    #: For each exchange of the chain: does its answer carry part of the data?
    carries: list[bool]

    def data(self, entries: Sequence[Entry]) -> bytes:
        """The answer's data: the data parts of the chain's answers, joined."""
        parts = []
        for index, carries in zip(self.indexes, self.carries, strict=True):
            if carries:
                parts.append(_exchange(entries, index).response[:-2])
        return b"".join(parts)


def _exchange(entries: Sequence[Entry], index: int) -> Exchange:
    entry = entries[index]
    assert isinstance(entry, Exchange)
    return entry


def answer_chains(entries: Sequence[Entry]) -> list[AnswerChain]:
    """The logical answers of a trace's exchanges, in order (an exchange with no status
    word belongs to none)."""
    chains: list[AnswerChain] = []
    index = 0
    while index < len(entries):
        first = entries[index]
        if not isinstance(first, Exchange) or len(first.response) < 2:
            index += 1
            continue
        chain = AnswerChain([index], [first.response[-2] != _WRONG_LE])
        current = first
        while index + 1 < len(entries):
            following = entries[index + 1]
            if not isinstance(following, Exchange) or len(following.response) < 2:
                break
            sw1 = current.response[-2]
            reissued = sw1 == _WRONG_LE and following.command[:4] == current.command[:4]
            fetched = sw1 == _MORE_DATA and following.command[1] == _GET_RESPONSE
            if not (reissued or fetched):
                break
            index += 1
            chain.indexes.append(index)
            chain.carries.append(following.response[-2] != _WRONG_LE)
            current = following
        chains.append(chain)
        index += 1
    return chains


def _length_byte(size: int) -> int | None:
    """A length as SW2 / short Le (256 is written 00), or None when it cannot be one."""
    return size & 0xFF if 1 <= size <= 256 else None


def _reshape(chain: AnswerChain, entries: list[Entry], data: bytes) -> bool:
    """Put ``data`` (the chain's answer, redacted) back into the chain's exchanges. When the
    length changed, the last part absorbs the change and every announced length (SW2 of
    ``61xx``/``6Cxx``) and follow-up Le is rewritten to match, as a card and the session
    would have produced them. Returns False (nothing changed) when that is impossible."""
    old_sizes = [
        len(_exchange(entries, i).response) - 2 if carries else 0
        for i, carries in zip(chain.indexes, chain.carries, strict=True)
    ]
    delta = len(data) - sum(old_sizes)
    sizes = list(old_sizes)
    last = max(k for k, carries in enumerate(chain.carries) if carries)
    sizes[last] += delta
    if sizes[last] < 0:
        return False
    updated: list[Exchange] = []
    offset = 0
    for k, index in enumerate(chain.indexes):
        exchange = _exchange(entries, index)
        command, response = exchange.command, exchange.response
        if k > 0 and chain.carries[k] and delta:
            # A follow-up command asks for the length the previous answer announced.
            announced = _length_byte(sizes[k])
            if announced is None or len(command) != 5:
                return False
            command = command[:4] + bytes((announced,))
        sw1, sw2 = response[-2], response[-1]
        if k + 1 < len(chain.indexes) and delta:
            announced = _length_byte(sizes[k + 1])
            if announced is None:
                return False
            sw2 = announced
        part = data[offset : offset + sizes[k]]
        offset += sizes[k]
        updated.append(
            dataclasses.replace(exchange, command=command, response=part + bytes((sw1, sw2)))
        )
    for index, exchange in zip(chain.indexes, updated, strict=True):
        entries[index] = exchange
    return True


# --- the redaction itself -------------------------------------------------------------------


@dataclass
class _Findings:
    pans: set[str] = dataclasses.field(default_factory=set)
    names: set[bytes] = dataclasses.field(default_factory=set)

    def add_pan(self, digits: str | None) -> None:
        if _is_pan(digits):
            self.pans.add(digits)

    def add_name(self, name: bytes) -> None:
        name = name.strip(b" \x00")
        if name and name not in (TEXT_PLACEHOLDER, *NAME_PLACEHOLDERS.values()):
            self.names.add(name)


def _collect(nodes: Iterable[Tlv], findings: _Findings) -> None:
    for _, node in walk(nodes):
        if node.children is not None:
            continue
        tag, value = node.tag_bytes, node.value
        if tag == _PAN_TAG:
            findings.add_pan(_digits(value))
        elif tag in _TRACK2_TAGS:
            findings.add_pan(_pan_from_track2(value))
        elif tag in _TRACK1_TAGS:
            parts = _split_track1(value)
            if parts is not None:
                findings.add_pan(parts[0].decode("latin-1"))
                findings.add_name(parts[1])
        elif tag in NAME_PLACEHOLDERS:
            findings.add_name(value)


#: Data objects found by a raw scan of an answer that is not valid TLV (a corrupted record
#: still holds the card's data): tag, then a one-byte length. They give the PANs and names
#: to look for everywhere.
_RAW_PATTERNS: Final = re.compile(
    rb"(\x5a|\x57|\x9f\x6b|\x56|\x5f\x20|\x9f\x0b|\x5b|\x5f\x21|\x5f\x22)([\x01-\x7f])"
)
#: Name of an Individual has a one-byte tag, so the scan finds it by chance in binary data
#: too; only a value that reads as a name (printable text) is taken for one.
_NAME_TEXT: Final = re.compile(rb"[ -~]+")


#: Track 1 as text anywhere in bytes: PAN ^ NAME ^ YYMM + service code, discretionary data.
_TRACK1_TEXT: Final = re.compile(rb"([0-9]{12,19})\^([^^]{0,26})\^([0-9]{7})([ -~]{0,79})")
#: Track 2 as packed BCD (in hex): PAN D YYMM + service code, discretionary digits.
_TRACK2_BCD: Final = re.compile(r"([0-9]{12,19})D([0-9]{7})([0-9]{0,19})")


def _collect_raw(data: bytes, findings: _Findings) -> None:
    for match in _RAW_PATTERNS.finditer(data):
        start = match.end()
        value = data[start : start + match.group(2)[0]]
        if match.group(1) == b"\x5b" and not _NAME_TEXT.fullmatch(value):
            continue
        node = Tlv(match.group(1), value)
        _collect([node], findings)
    # A corrupted answer may not even have its tags and lengths: look for the tracks'
    # own patterns ('^' separators in text, a D nibble in BCD).
    for found in _TRACK1_TEXT.finditer(data):
        findings.add_pan(found.group(1).decode("ascii"))
        findings.add_name(found.group(2))
    for digits in _TRACK2_BCD.finditer(data.hex().upper()):
        findings.add_pan(digits.group(1))


def _scrub_tracks(data: bytes) -> bytes:
    """``data`` (an answer that does not decode) with the name and discretionary data of
    any Track 1 / Track 2 pattern replaced in place, lengths kept (why they are kept: see
    :func:`_redact_undecoded`)."""

    def track1(found: re.Match[bytes]) -> bytes:
        name = _fit(TEXT_PLACEHOLDER, len(found.group(2)))
        rest = _zero_text(found.group(4))
        return found.group(1) + b"^" + name + b"^" + found.group(3) + rest

    def track2(found: re.Match[str]) -> str:
        return found.group(1) + "D" + found.group(2) + _zero_digits(found.group(3))

    data = _TRACK1_TEXT.sub(track1, data)
    text = data.hex().upper()
    return bytes.fromhex(_TRACK2_BCD.sub(track2, text)) if "D" in text else data


@functools.cache
def _raw_blank_pattern() -> re.Pattern[bytes]:
    """The sensitive data objects a raw scan blanks in an answer that does not decode:
    those whose tag has two bytes or more. A one-byte tag (58, 99...) followed by a
    plausible length turns up by chance in binary data such as a certificate far too often;
    those tags, like PANs and names, are found by their own patterns instead."""
    tags = sorted((t for t in sensitive_tags() if len(t) >= 4), key=len, reverse=True)
    alternatives = b"|".join(re.escape(bytes.fromhex(tag)) for tag in tags)
    return re.compile(b"(" + alternatives + rb")([\x01-\x7f])")


def _decode_error(data: bytes) -> str:
    return str(decode(data, strict=False).error)


def _blank_raw(data: bytes) -> bytes:
    """``data`` (an answer that does not decode) with the value of each data object
    :func:`_raw_blank_pattern` finds redacted in place. A hit by chance could overwrite
    bytes the decoder reads and so change the error the answer gives on replay: such a
    replacement is not made."""
    error = _decode_error(data)
    for match in _raw_blank_pattern().finditer(data):
        start = match.end()
        value = data[start : start + match.group(2)[0]]
        new = _redacted_value(match.group(1), value, keep_length=True)
        if new == value or len(new) != len(value):
            continue
        candidate = data[:start] + new + data[start + len(value) :]
        if _decode_error(candidate) == error:
            data = candidate
    return data


def _redact_undecoded(data: bytes) -> bytes:
    """An answer that does not decode, with its card data replaced in place: the data
    objects decoded before the error, sensitive data objects found by a raw scan, and the
    Track 1 / Track 2 patterns (PANs and names found anywhere are replaced afterwards).

    Every length is kept, a name's too: each placeholder is cut or space-padded to the
    length of what it replaces (``5F 20 1A`` then 26 characters), where an answer that
    decodes gets a fixed-length placeholder and re-encoded lengths. Two reasons. The
    broken structure gives no reliable way to find the lengths that count the name (a raw
    hit or a track pattern has no known template around it). And replaying the answer
    must give the error the live read gave, whose message quotes offsets and lengths
    ("length 41 runs past the end of the data (40 bytes left)", as stored in the vectors'
    expected outcomes): a redacted trace that changed them would no longer replay to its
    recorded outcome.
    """
    return _scrub_tracks(_blank_raw(_in_place(data)))


#: What the data of a command carrying PIN data (apdu.PIN_DATA_INS: VERIFY, CHANGE
#: REFERENCE DATA) becomes, cut or padded with FF to the recorded length: an ISO 9564
#: format 2 block of the PIN "0000", so a replay still sends a well-formed command.
PIN_BLOCK_PLACEHOLDER: Final = bytes.fromhex("240000FFFFFFFFFF")


def pin_block_size(command: bytes) -> int:
    """How many bytes of PIN data follow the header of ``command`` (a short APDU): its Lc
    for a VERIFY (INS 20) or CHANGE REFERENCE DATA (INS 24, EMV's PIN change/unblock),
    cut to the bytes present; 0 for any other command."""
    if len(command) <= 5 or command[1] not in PIN_DATA_INS:
        return 0
    return min(command[4], len(command) - 5)


def redact_pin_block(command: bytes) -> bytes:
    """``command`` with its PIN data (:func:`pin_block_size`) replaced by
    :data:`PIN_BLOCK_PLACEHOLDER` of the same length; other commands unchanged."""
    size = pin_block_size(command)
    if not size:
        return command
    block = (PIN_BLOCK_PLACEHOLDER + b"\xff" * size)[:size]
    return command[:5] + block + command[5 + size :]


def _redact_tree(nodes: TlvList) -> bool:
    """Replace the sensitive values in decoded nodes (:func:`_redacted_value`); True if
    anything changed."""
    changed = False
    for _, node in walk(nodes):
        if node.children is not None:
            continue
        new = _redacted_value(node.tag_bytes, node.value)
        if new != node.value:
            node.value = new
            changed = True
    return changed


def _zero_digits(hex_digits: str) -> str:
    return re.sub("[0-9]", "0", hex_digits)


def _zero_text(text: bytes) -> bytes:
    return re.sub(rb"[0-9A-Za-z]", b"0", text)


def _is_pan(digits: str | None) -> TypeGuard[str]:
    """Whether ``digits`` is a number redaction takes for a PAN (and substitutes)."""
    if digits is None:
        return False
    return digits.isascii() and digits.isdigit() and len(digits) in _PAN_LENGTHS


@functools.cache
def _fill_kinds() -> dict[bytes, str]:
    """How each sensitive tag's value is blanked, from the formats of its dictionary rows:
    ``"text"`` (``0`` characters) when any row says a, an or ans (9F61 is ``an`` for
    UnionPay and ``b`` for Mastercard: ``0`` characters are valid in both), ``"digits"``
    (BCD zeros, F padding kept) for n/cn, else ``"binary"`` (zero bytes)."""
    formats: dict[bytes, set[str]] = {}
    for info in all_tags():
        if info.tag in sensitive_tags():
            formats.setdefault(bytes.fromhex(info.tag), set()).add(info.format)
    kinds: dict[bytes, str] = {}
    for tag, found in formats.items():
        if found & {"a", "an", "ans"}:
            kinds[tag] = "text"
        elif found <= {"n", "cn"}:
            kinds[tag] = "digits"
        else:
            kinds[tag] = "binary"
    return kinds


def _blank(tag: bytes, value: bytes) -> bytes:
    """``value`` with nothing of it left but its length, in a form its tag allows."""
    kind = _fill_kinds().get(tag, "binary")
    if kind == "text":
        return b"0" * len(value)
    if kind == "digits":
        return bytes.fromhex(_zero_digits(value.hex().upper()))
    return bytes(len(value))


def _redacted_value(tag: bytes, value: bytes, *, keep_length: bool = False) -> bytes:
    """What a sensitive data object's value becomes (other values come back unchanged).

    A name becomes its placeholder, which changes its length unless ``keep_length`` (then
    the placeholder is cut or space-padded to the name's length); everything else keeps
    its length. A PAN is left for the PAN substitution, which replaces it everywhere."""
    if tag in NAME_PLACEHOLDERS:
        placeholder = NAME_PLACEHOLDERS[tag]
        return _fit(placeholder, len(value)) if keep_length else placeholder
    if tag in _TRACK1_TAGS:
        parts = _split_track1(value)
        if parts is None or len(parts[2]) < 7 or not _is_pan(parts[0].decode("latin-1")):
            return _blank(tag, value)
        track_pan, name, track_rest = parts
        name = _fit(TEXT_PLACEHOLDER, len(name)) if keep_length else TEXT_PLACEHOLDER
        track_rest = track_rest[:7] + _zero_text(track_rest[7:])
        return value[:1] + track_pan + b"^" + name + b"^" + track_rest
    if tag in _TRACK2_TAGS:
        pan, separator, rest = value.hex().upper().partition("D")
        if not separator or len(rest) < 7 or not _is_pan(pan):
            return value if tag in _KEPT_UNLESS_TRACK2 else _blank(tag, value)
        kept, discretionary = rest[:7], rest[7:]
        return bytes.fromhex(pan + "D" + kept + _zero_digits(discretionary))
    if tag == _PAN_TAG:
        return value if _is_pan(_digits(value)) else _blank(tag, value)
    if tag == _DISCRETIONARY_DIGITS:
        return bytes.fromhex(_zero_digits(value.hex().upper()))
    if tag == _DISCRETIONARY_TEXT:
        return _zero_text(value)
    if tag.hex().upper() in sensitive_tags():
        return _blank(tag, value)
    return value


def _fit(placeholder: bytes, size: int) -> bytes:
    return (placeholder + b" " * size)[:size]


def _same_length(data: bytes, pans: dict[str, str], names: Iterable[bytes]) -> bytes:
    """Replace PAN digits (BCD at any nibble, and ASCII) and raw name text, keeping length."""
    if not data:
        return data
    text = data.hex().upper()
    for real, substitute in pans.items():
        text = text.replace(real, substitute)
    out = bytes.fromhex(text)
    for real, substitute in pans.items():
        out = out.replace(real.encode("ascii"), substitute.encode("ascii"))
    for name in names:
        if len(name) >= _MIN_NAME_SEARCH:
            # In place, the placeholder fitted to the name's length: the text stands inside
            # some other value (or an answer that does not decode, see _redact_undecoded),
            # whose length cannot change without knowing what it is.
            out = out.replace(name, _fit(TEXT_PLACEHOLDER, len(name)))
    return out


def _redact_text(text: str | None, pans: dict[str, str], names: Iterable[bytes]) -> str | None:
    if text is None:
        return None
    for real, substitute in pans.items():
        text = text.replace(real, substitute)
    for name in names:
        decoded = name.decode("latin-1")
        if len(decoded) >= _MIN_NAME_SEARCH:
            text = text.replace(decoded, TEXT_PLACEHOLDER.decode("ascii"))
    return text


def redact(trace: Trace) -> tuple[Trace, RedactionReport]:
    """A copy of ``trace`` with the PANs, cardholder names, track discretionary data and
    other sensitive values replaced (see the module docstring), marked ``"redacted":
    true``, and a report of what changed. A trace already marked redacted is returned
    unchanged (one redacted by an older version, which replaced fewer tags, too: run
    ``redact`` on the unredacted original again).

    Raises :class:`~contactless.errors.ContactlessError` if, after redaction, a PAN it
    found would still appear (it never returns a trace that leaks one).
    """
    if trace.header.redacted:
        return trace, RedactionReport()
    entries: list[Entry] = list(trace.entries)
    chains = answer_chains(entries)
    findings = _Findings()
    decoded: dict[int, TlvList | None] = {}
    for number, chain in enumerate(chains):
        data = chain.data(entries)
        nodes = decode(data, strict=False)
        if nodes.error is None:
            decoded[number] = nodes
            _collect(nodes, findings)
        else:
            decoded[number] = None
            _collect(nodes, findings)  # what decoded before the error
            _collect_raw(data, findings)
    pans = {pan: substitute_pan(pan) for pan in sorted(findings.pans)}
    names = sorted(findings.names, key=len, reverse=True)

    answers_changed = 0
    for number, chain in enumerate(chains):
        original = chain.data(entries)
        tree = decoded[number]
        data = original
        if tree is not None and _redact_tree(tree):
            data = encode(tree)
        elif tree is None:
            data = _redact_undecoded(data)
        data = _same_length(data, pans, names)
        if data == original:
            continue
        answers_changed += 1
        if not _reshape(chain, entries, data):
            # The new length cannot be announced (over 256 bytes, or an odd follow-up
            # command): keep every length, and fit the placeholders into the old ones
            # (the name's length then stays: the price of an answer that still replays).
            fitted = _same_length(_in_place(original), pans, names)
            if not _reshape(chain, entries, fitted):  # same length: always possible
                raise LocalProtocolError(f"cannot redact the answer at entry {chain.indexes[0]}")

    for index, entry in enumerate(entries):
        entries[index] = _redact_entry(entry, pans, names)
    header = dataclasses.replace(
        trace.header,
        redacted=True,
        note=_redact_text(trace.header.note, pans, names),
        reader=_redact_text(trace.header.reader, pans, names),
    )
    result = Trace(header, tuple(entries), trace.source)
    _verify(result, pans)
    return result, RedactionReport(len(pans), len(findings.names), answers_changed)


def _in_place(original: bytes) -> bytes:
    """``original`` with the sensitive values of the data objects that decode (all of them,
    or those before a decoding error) replaced in place, names fitted into their own
    length: every length kept."""
    nodes = decode(original, strict=False)
    out = bytearray(original)
    for _, node in walk(nodes):
        if node.children is not None:
            continue
        new = _redacted_value(node.tag_bytes, node.value, keep_length=True)
        if new == node.value:
            continue
        start = node.offset + len(node.tag_bytes) + node.length_form
        out[start : start + len(node.value)] = new
    return bytes(out)


def _redact_entry(entry: Entry, pans: dict[str, str], names: Sequence[bytes]) -> Entry:
    note = _redact_text(entry.note, pans, names)
    if isinstance(entry, Exchange):
        command = redact_pin_block(_same_length(entry.command, pans, names))
        return dataclasses.replace(entry, command=command, note=note)
    in_flight = (
        None
        if entry.command is None
        else redact_pin_block(_same_length(entry.command, pans, names))
    )
    extra = {
        key: _redact_text(value, pans, names) if isinstance(value, str) else value
        for key, value in entry.extra.items()
    }
    return TraceEvent(entry.kind, in_flight, entry.ms, note, extra, entry.line)


def _verify(trace: Trace, pans: dict[str, str]) -> None:
    from .trace import dumps

    blobs: list[bytes] = [dumps(trace).encode("utf-8")]
    for entry in trace.entries:
        if isinstance(entry, Exchange):
            blobs += [entry.command, entry.response]
        elif entry.command is not None:
            blobs.append(entry.command)
    for pan in pans:
        for blob in blobs:
            if pan_forms(blob, pan):
                raise ContactlessError(
                    "redaction failed: a PAN is still in the trace; the trace was not written",
                    remedy="this is a bug: please report it (without the trace)",
                )
