"""What an EMV read found: :class:`CardData`, built from the card's answers.

The flow (``emv.flow``) collects every answer as decoded TLV (:class:`ResponseData`);
:func:`card_data_from` turns them into named, decoded fields. Card data is sensitive:
``repr``, ``str`` and :meth:`CardData.to_json` mask the PAN, Track 2 and the cardholder
name unless the caller opts in (``show_pan=True``).

Given the transaction date (9A, from the terminal clock the flow used), a :class:`CardData`
says whether the card is expired or not yet effective at that date, as a terminal's
processing restrictions check does (EMV Book 3 10.5.2).
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from ..errors import RemoteProtocolError
from ..hexutil import to_hex
from ..masking import SENSITIVE_TAGS, mask_name, mask_pan, mask_value
from ..tlv import Tlv, TlvList, parse_tag, walk
from ..tlv.bitfields import (
    AflEntry,
    CvmList,
    Track2,
    decode_aip,
    decode_cid,
    decode_cvm_list,
    parse_track2,
)
from ..tlv.format import (
    country_alpha,
    currency_alpha,
    decode_cn,
    decode_date,
    decode_n,
    decode_text,
)
from ..tlv.tags import lookup, name_of, scheme_for_aid

__all__ = [
    "CardData",
    "Cryptogram",
    "RecordRead",
    "ResponseData",
    "ResponseKind",
    "card_data_from",
    "cryptogram_fields",
    "cryptogram_from",
]

#: What an answer was, in the order a read meets them.
ResponseKind = Literal["directory", "select", "fci", "gpo", "record", "generate_ac"]


@dataclass(frozen=True, slots=True)
class ResponseData:
    """One successful answer, decoded: ``command`` is its description (``"READ RECORD SFI
    1 record 2"``); ``kind`` says what it was (``"select"`` is an application that was
    selected but not used). ``repr`` shows no values (they may hold card data)."""

    command: str
    kind: ResponseKind
    tlvs: TlvList

    def __repr__(self) -> str:
        return f"ResponseData({self.command!r}, {self.kind}, {len(self.tlvs)} object(s))"


@dataclass(frozen=True, slots=True)
class RecordRead:
    """A record read from the card: file ``sfi``, record number ``record``; ``oda`` says
    whether the AFL marked it for offline data authentication."""

    sfi: int
    record: int
    oda: bool


@dataclass(frozen=True, slots=True)
class Cryptogram:
    """An application cryptogram the card computed, and where it came from (``"GET
    PROCESSING OPTIONS"`` for a qVSDC-style answer, or ``"GENERATE AC"``)."""

    type: str  # "ARQC", "TC", "AAC" (from CID bits 8-7)
    cid: int
    atc: int
    cryptogram: bytes
    iad: bytes | None
    source: str


def _masked(value: str | None, show: bool, masker: Callable[[str], str]) -> str | None:
    if value is None or show:
        return value
    return masker(value)


@dataclass(frozen=True)
class CardData:
    """The result of an EMV read.

    Text fields are decoded (PAN digits, ``expiry`` as ``YYYY-MM``, dates as ISO
    ``YYYY-MM-DD``); codes are ISO numeric with alpha forms in :meth:`to_json`; ``None``
    means the card did not give the item. ``responses`` keeps every answer as decoded TLV
    for tools (:meth:`find` looks a tag up there). ``apdus`` counts the commands the flow
    sent (each one a command/response pair; T=0 GET RESPONSE rounds are not counted).
    ``cryptogram`` is set when the card computed one (in its GPO answer, or for
    ``read_flow(..., transaction=True)``).
    """

    aid: bytes
    label: str | None = None
    preferred_name: str | None = None
    brand: str | None = None
    pan: str | None = None
    pan_sequence_number: str | None = None
    expiry: str | None = None
    effective_date: str | None = None
    service_code: str | None = None
    cardholder_name: str | None = None
    issuer_country: int | None = None
    currency: int | None = None
    language_preference: tuple[str, ...] = ()
    aip: bytes | None = None
    afl: tuple[AflEntry, ...] = ()
    cvm_list: CvmList | None = None
    track2: Track2 | None = None
    records: tuple[RecordRead, ...] = ()
    responses: tuple[ResponseData, ...] = ()
    apdus: int = 0
    reader: str | None = None
    atr: bytes | None = None
    cryptogram: Cryptogram | None = None
    #: The last day the card is valid: the Application Expiration Date (5F24), or for a card
    #: with only Track 2 (YYMM) the last day of the expiry month.
    expiry_date: date | None = None
    #: The transaction date (9A) the read used; ``None`` when unknown.
    transaction_date: date | None = None

    # --- derived values ------------------------------------------------------------------

    @property
    def pan_last4(self) -> str | None:
        """Last four digits of the PAN (safe to show)."""
        return self.pan[-4:] if self.pan else None

    @property
    def masked_pan(self) -> str | None:
        """The PAN with all but the first 6 and last 4 digits masked."""
        return mask_pan(self.pan) if self.pan else None

    @property
    def aip_bits(self) -> dict[str, bool]:
        """The Application Interchange Profile's named bits (empty when there is no AIP)."""
        return decode_aip(self.aip) if self.aip else {}

    @property
    def expired(self) -> bool:
        """Whether the transaction date is after the expiry date (EMV Book 3 10.5.2: the
        card is valid through its expiry date). ``False`` when either date is unknown."""
        if self.expiry_date is None or self.transaction_date is None:
            return False
        return self.transaction_date > self.expiry_date

    @property
    def not_yet_effective(self) -> bool:
        """Whether the transaction date is before the Application Effective Date (5F25).
        ``False`` when either date is unknown."""
        if self.effective_date is None or self.transaction_date is None:
            return False
        return self.transaction_date < date.fromisoformat(self.effective_date)

    @property
    def cryptogram_type(self) -> str | None:
        """``"ARQC"``, ``"TC"`` or ``"AAC"`` when the card computed a cryptogram."""
        return self.cryptogram.type if self.cryptogram else None

    @property
    def atc(self) -> int | None:
        """Application Transaction Counter returned with the cryptogram."""
        return self.cryptogram.atc if self.cryptogram else None

    def find(self, tag: int | str | bytes) -> bytes | None:
        """The value of the first ``tag`` in the answers, in exchange order (the PPSE
        directory first), or ``None``."""
        wanted = parse_tag(tag)
        for response in self.responses:
            for _, node in walk(response.tlvs):
                if node.tag_bytes == wanted:
                    return node.value
        return None

    def with_reader(self, reader: str | None, atr: bytes | None) -> CardData:
        """A copy that records which reader (URI) and ATR the read went through."""
        return dataclasses.replace(self, reader=reader, atr=atr)

    # --- output ----------------------------------------------------------------------------

    def to_json(self, show_pan: bool = False, *, include_tlvs: bool = False) -> dict[str, Any]:
        """A JSON-ready dict. The PAN, Track 2 and cardholder name are masked unless
        ``show_pan``; ``include_tlvs`` adds every answer's TLV (sensitive values masked the
        same way)."""
        out: dict[str, Any] = {
            "reader": self.reader,
            "atr": to_hex(self.atr) if self.atr is not None else None,
            "aid": to_hex(self.aid),
            "label": self.label,
            "preferred_name": self.preferred_name,
            "brand": self.brand,
            "pan": self.pan if show_pan else self.masked_pan,
            "pan_last4": self.pan_last4,
            "pan_sequence_number": self.pan_sequence_number,
            "expiry": self.expiry,
            "effective_date": self.effective_date,
            "transaction_date": self.transaction_date.isoformat()
            if self.transaction_date is not None
            else None,
            "expired": self.expired,
            "not_yet_effective": self.not_yet_effective,
            "service_code": self.service_code,
            "cardholder_name": _masked(self.cardholder_name, show_pan, mask_name),
            "issuer_country": country_alpha(self.issuer_country)
            if self.issuer_country is not None
            else None,
            "issuer_country_code": self.issuer_country,
            "currency": currency_alpha(self.currency) if self.currency is not None else None,
            "currency_code": self.currency,
            "language_preference": list(self.language_preference),
            "aip": to_hex(self.aip) if self.aip is not None else None,
            "aip_bits": self.aip_bits,
            "afl": [
                {"sfi": e.sfi, "first": e.first, "last": e.last, "oda": e.oda} for e in self.afl
            ],
            "cvm_list": _cvm_json(self.cvm_list),
            "track2": self.track2.text(show_sensitive=show_pan) if self.track2 else None,
            "records": [{"sfi": r.sfi, "record": r.record, "oda": r.oda} for r in self.records],
            "apdus": self.apdus,
        }
        if self.cryptogram is not None:
            out.update(
                cryptogram_type=self.cryptogram.type,
                atc=self.cryptogram.atc,
                cryptogram=to_hex(self.cryptogram.cryptogram),
                cid=f"{self.cryptogram.cid:02X}",
                iad=to_hex(self.cryptogram.iad) if self.cryptogram.iad is not None else None,
                cryptogram_source=self.cryptogram.source,
            )
        if include_tlvs:
            out["responses"] = [
                {
                    "command": r.command,
                    "kind": r.kind,
                    "tlvs": _tlvs_json(r.tlvs, self.aid, show_pan),
                }
                for r in self.responses
            ]
        return out

    def summary(self, show_pan: bool = False) -> list[tuple[str, str]]:
        """(label, value) rows for people, in display order; masked unless ``show_pan``."""
        rows: list[tuple[str, str | None]] = [
            ("Reader", self.reader),
            ("Application", self.label or self.preferred_name),
            ("AID", to_hex(self.aid)),
            ("Brand", self.brand),
            ("PAN", self.pan if show_pan else self.masked_pan),
            ("Expiry", _flagged(self.expiry, self.expired, "expired")),
            (
                "Effective",
                _flagged(self.effective_date, self.not_yet_effective, "not yet effective"),
            ),
            ("Service code", self.service_code),
            ("Cardholder", _masked(self.cardholder_name, show_pan, mask_name)),
            ("Issuer country", _code_text(self.issuer_country, country_alpha)),
            ("Currency", _code_text(self.currency, currency_alpha)),
            ("Languages", " ".join(self.language_preference) or None),
            ("Records read", str(len(self.records))),
        ]
        if self.cryptogram is not None:
            rows += [
                ("Cryptogram", f"{self.cryptogram.type} {to_hex(self.cryptogram.cryptogram)}"),
                ("ATC", str(self.cryptogram.atc)),
            ]
        rows.append(("APDUs", str(self.apdus)))
        return [(name, value) for name, value in rows if value is not None]

    def __str__(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.summary())

    def __repr__(self) -> str:
        return (
            f"CardData(aid={to_hex(self.aid)}, brand={self.brand!r}, pan={self.masked_pan!r}, "
            f"expiry={self.expiry!r}, records={len(self.records)}, apdus={self.apdus}"
            + (f", cryptogram={self.cryptogram.type}" if self.cryptogram else "")
            + ")"
        )


def _flagged(value: str | None, flag: bool, note: str) -> str | None:
    return f"{value} ({note})" if value is not None and flag else value


def _code_text(code: int | None, alpha: Callable[[int], str | None]) -> str | None:
    if code is None:
        return None
    name = alpha(code)
    return f"{name} ({code:03d})" if name else f"{code:03d}"


def _cvm_json(cvm_list: CvmList | None) -> dict[str, Any] | None:
    if cvm_list is None:
        return None
    return {
        "x": cvm_list.x,
        "y": cvm_list.y,
        "rules": [
            {
                "method": rule.method,
                "condition": rule.condition,
                "apply_next": rule.apply_next,
                # the rule's two bytes as on the card (bit 7 of the first: apply next)
                "code": f"{rule.method_code | (0x40 if rule.apply_next else 0):02X}"
                f"{rule.condition_code:02X}",
            }
            for rule in cvm_list.rules
        ],
    }


def _masked_value(node: Tlv, aid: bytes) -> str | None:
    """The masked text of a sensitive primitive node, or None when it is not sensitive:
    the masking table's tags keep what may be shown (first 6 / last 4, expiry); other tags
    the dictionary marks sensitive (Track 3, PIN data...) are hidden whole."""
    if node.tag_hex in SENSITIVE_TAGS:
        return mask_value(node.tag_hex, node.value)
    info = lookup(node.tag_bytes, aid)
    if info is not None and info.sensitive:
        return "*" * (2 * len(node.value))
    return None


def _tlvs_json(nodes: Iterable[Tlv], aid: bytes, show_pan: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        entry: dict[str, Any] = {"tag": node.tag_hex}
        masked = None if show_pan or node.children is not None else _masked_value(node, aid)
        if node.children is not None:
            entry["children"] = _tlvs_json(node.children, aid, show_pan)
        elif masked is not None:
            entry["value"] = masked
            entry["masked"] = True
        else:
            entry["value"] = to_hex(node.value)
        out.append(entry)
    return out


# --- building CardData from the answers -------------------------------------------------------


def _where(tag: str) -> str:
    """How messages name a data object: ``Application PAN (tag 5A)``."""
    return f"{name_of(tag)} (tag {tag})"


def _expiry_from_track2(yymm: str) -> date:
    """The last day of a Track 2 expiry month (Track 2 has YYMM only)."""
    # Reuse the EMV century rule of decode_date with day 01, then go to the month's end.
    first = decode_date(bytes.fromhex(yymm + "01"), what="Track 2 expiry date")
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _day(when: date | None) -> date | None:
    # A datetime is a date, but does not compare with one: keep the day only.
    return when.date() if isinstance(when, datetime) else when


def _preferred_name(value: bytes, code_table: bytes | None) -> str:
    # Issuer Code Table Index (9F11) 01-10 names the ISO/IEC 8859 part the name is in.
    encoding = None
    if code_table and len(code_table) == 1 and 1 <= int(code_table.hex(), 16) <= 10:
        encoding = f"iso8859-{int(code_table.hex(), 16)}"
    return decode_text(value, encoding=encoding)


def _languages(value: bytes) -> tuple[str, ...]:
    text = decode_text(value)
    return tuple(text[i : i + 2].lower() for i in range(0, len(text) - 1, 2))


def cryptogram_from(nodes: Iterable[Tlv], source: str) -> Cryptogram | None:
    """The cryptogram in a format 2 (77) answer's objects (9F27, 9F36, 9F26, 9F10), or
    ``None`` when there is no Application Cryptogram (9F26) among them. A cryptogram
    without its CID or ATC raises :class:`~contactless.errors.RemoteProtocolError`."""
    values: dict[bytes, bytes] = {}
    for _, node in walk(nodes):
        if node.children is None:
            values.setdefault(node.tag_bytes, node.value)
    cryptogram = values.get(b"\x9f\x26")
    if cryptogram is None:
        return None
    cid, atc = values.get(b"\x9f\x27"), values.get(b"\x9f\x36")
    if cid is None or atc is None:
        missing = " and ".join(
            name for name, v in (("CID (9F27)", cid), ("ATC (9F36)", atc)) if v is None
        )
        raise RemoteProtocolError(f"the answer to {source} has a cryptogram but no {missing}")
    return cryptogram_fields(cid, atc, cryptogram, values.get(b"\x9f\x10"), source)


def cryptogram_fields(
    cid: bytes, atc: bytes, cryptogram: bytes, iad: bytes | None, source: str
) -> Cryptogram:
    """Check and combine the parts of a cryptogram answer."""
    if len(atc) != 2:
        raise RemoteProtocolError(
            f"the answer to {source}: ATC (9F36) must be 2 bytes, got {len(atc)}"
        )
    if len(cryptogram) != 8:
        raise RemoteProtocolError(
            f"the answer to {source}: Application Cryptogram (9F26) must be 8 bytes, "
            f"got {len(cryptogram)}"
        )
    try:
        kind = decode_cid(cid)["cryptogram"]
    except RemoteProtocolError as error:
        raise RemoteProtocolError(f"the answer to {source}: {error.message}") from None
    return Cryptogram(
        type=kind,
        cid=cid[0],
        atc=int.from_bytes(atc, "big"),
        cryptogram=cryptogram,
        iad=iad,
        source=source,
    )


def card_data_from(
    aid: bytes,
    responses: Iterable[ResponseData],
    *,
    aip: bytes | None,
    afl: Iterable[AflEntry] = (),
    records: Iterable[RecordRead] = (),
    apdus: int = 0,
    cryptogram: Cryptogram | None = None,
    transaction_date: date | None = None,
) -> CardData:
    """Decode the application's data objects (final FCI, GPO answer, records) into a
    :class:`CardData`. The first occurrence of a tag wins. A value that breaks its format
    raises :class:`~contactless.errors.RemoteProtocolError` naming the tag.

    ``transaction_date`` is the transaction date (9A) the terminal sent: with it the result
    says whether the card is expired or not yet effective on that day."""
    responses = tuple(responses)
    values: dict[str, bytes] = {}
    for response in responses:
        if response.kind in ("fci", "gpo", "record"):
            for _, node in walk(response.tlvs):
                if node.children is None:
                    values.setdefault(node.tag_hex, node.value)

    track2 = parse_track2(values["57"]) if "57" in values else None
    pan = (
        decode_cn(values["5A"], what=_where("5A"))
        if "5A" in values
        else (track2.pan if track2 else None)
    )
    if "5F24" in values:
        expiry_date: date | None = decode_date(values["5F24"], what=_where("5F24"))
    else:
        expiry_date = _expiry_from_track2(track2.expiry) if track2 else None
    expiry = f"{expiry_date.year:04d}-{expiry_date.month:02d}" if expiry_date else None
    effective = (
        decode_date(values["5F25"], what=_where("5F25")).isoformat() if "5F25" in values else None
    )
    if "5F30" in values:
        service_code: str | None = decode_n(values["5F30"], what=_where("5F30"))[-3:]
    else:
        service_code = track2.service_code if track2 else None

    def number(tag: str) -> int | None:
        return int(decode_n(values[tag], what=_where(tag)) or "0") if tag in values else None

    def text(tag: str) -> str | None:
        return decode_text(values[tag]).strip() if tag in values else None

    return CardData(
        aid=aid,
        label=text("50"),
        preferred_name=_preferred_name(values["9F12"], values.get("9F11")).strip()
        if "9F12" in values
        else None,
        brand=scheme_for_aid(aid),
        pan=pan,
        pan_sequence_number=decode_n(values["5F34"], what=_where("5F34"))
        if "5F34" in values
        else None,
        expiry=expiry,
        effective_date=effective,
        service_code=service_code,
        cardholder_name=text("5F20"),
        issuer_country=number("5F28"),
        currency=number("9F42"),
        language_preference=_languages(values["5F2D"]) if "5F2D" in values else (),
        aip=aip,
        afl=tuple(afl),
        cvm_list=decode_cvm_list(values["8E"]) if "8E" in values else None,
        track2=track2,
        records=tuple(records),
        responses=responses,
        apdus=apdus,
        cryptogram=cryptogram,
        expiry_date=expiry_date,
        transaction_date=_day(transaction_date),
    )
