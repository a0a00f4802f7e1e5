"""The EMV / ISO 7816 tag dictionary: names, formats and sources of data objects.

The facts live in two data files shipped with the package: ``tags.csv`` (one row per tag and
meaning) and ``schemes.csv`` (which payment scheme a RID belongs to). They are read once, on
first use, and checked row by row: a malformed row is a :class:`~contactless.errors.ConfigError`
naming the file and line.

Some tags mean different things to different payment schemes: ``9F6E`` is Visa's Form Factor
Indicator but Mastercard's Third Party Data. Such tags have a generic row and scheme rows; give
the AID of the application that produced the data and the scheme's meaning wins::

    >>> name_of("9F6E", aid="A0000000031010")
    'Form Factor Indicator (FFI)'
    >>> name_of("9F6E", aid="A0000000041010")
    'Third Party Data'
    >>> name_of(0x9F99)
    'Unknown tag 9F99'
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from ..errors import ConfigError, LocalProtocolError
from ..masking import SENSITIVE_TAGS
from ._pytlv import parse_tag

__all__ = [
    "FORMATS",
    "SOURCES",
    "TagDictionary",
    "TagInfo",
    "all_tags",
    "default_dictionary",
    "lookup",
    "name_of",
    "scheme_for_aid",
    "sensitive_tags",
]

#: Data element formats of EMV Book 3 section 4.3.
FORMATS = frozenset({"a", "an", "ans", "b", "cn", "n"})
#: Who provides a data element.
SOURCES = frozenset({"card", "terminal", "issuer", "kernel", "card/terminal", "issuer/terminal"})

_TAG_COLUMNS = (
    "tag",
    "scheme",
    "name",
    "format",
    "source",
    "templates",
    "length",
    "kind",
    "sensitive",
)
_SCHEME_COLUMNS = ("rid", "scheme", "owner")
# kind -> whether the tag must be constructed (bit 6 of its first byte set)
_KINDS = {"template": True, "primitive": False}
_FLAGS = {"yes": True, "no": False}
# "var", "2", "1-16", or alternatives such as "1,3" and "1,3-8"
_LENGTH = re.compile(r"var|\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*")
_SCHEME_NAME = re.compile(r"[a-z][a-z0-9_]*")
# A RID is 5 bytes; longer prefixes (up to a full 16-byte AID) may refine it.
_MIN_PREFIX, _MAX_PREFIX = 5, 16
_REMEDY = "fix or delete the row; see the column notes at the top of the file"


@dataclass(frozen=True, slots=True)
class TagInfo:
    """What the dictionary knows about one data object (for one scheme, or generically).

    ``templates`` lists the templates the element appears in; ``length`` is the value length
    in bytes as the specification states it ("2", "1-16", "1,3", "var"); ``scheme`` is ``None``
    for the generic meaning; ``sensitive`` marks PAN, track data, cardholder name and PIN data.
    """

    tag: str
    name: str
    format: str
    source: str
    templates: tuple[str, ...]
    length: str
    scheme: str | None
    sensitive: bool

    @property
    def constructed(self) -> bool:
        """True for a template (a constructed BER tag)."""
        return bool(int(self.tag[:2], 16) & 0x20)


class TagDictionary:
    """Tag rows indexed by tag bytes, plus the RID -> scheme table used to pick a meaning.

    Build one with :meth:`load` (the shipped files, or files of your own); the module-level
    functions use :func:`default_dictionary`.
    """

    def __init__(self, entries: Iterable[TagInfo], schemes: dict[bytes, str]) -> None:
        self._order: list[TagInfo] = []
        self._by_tag: dict[bytes, dict[str | None, TagInfo]] = {}
        for info in entries:
            variants = self._by_tag.setdefault(bytes.fromhex(info.tag), {})
            if info.scheme in variants:
                raise ConfigError(f"tag {info.tag} is listed twice for scheme {info.scheme}")
            variants[info.scheme] = info
            self._order.append(info)
        self._schemes = dict(schemes)

    @classmethod
    def load(
        cls,
        tags_path: str | os.PathLike[str] | None = None,
        schemes_path: str | os.PathLike[str] | None = None,
    ) -> TagDictionary:
        """Read and check the dictionary files; by default the ones shipped with the package.

        Raises :class:`~contactless.errors.ConfigError` naming the file (and line) of the
        first problem.
        """
        schemes_name, schemes_text = _read(schemes_path, "schemes.csv")
        tags_name, tags_text = _read(tags_path, "tags.csv")
        schemes = _parse_schemes(schemes_text, schemes_name)
        entries = _parse_tags(tags_text, tags_name, set(schemes.values()))
        return cls(entries, schemes)

    def lookup(self, tag: int | str | bytes, aid: bytes | str | None = None) -> TagInfo | None:
        """The entry for ``tag`` (``0x9F38``, ``"9F38"`` or ``b"\\x9f\\x38"``), or ``None``.

        When ``aid`` belongs to a scheme with its own meaning for the tag, that row wins;
        otherwise the generic row. A tag defined by one scheme only is returned when the
        scheme is unknown (no AID, or an unlisted RID), but not for another scheme's AID.
        Hex or bytes that do not form a BER tag are unknown (``None``); a value that is no tag
        at all (non-hex text, empty, wrong type) or a non-hex AID raises
        :class:`~contactless.errors.LocalProtocolError`.
        """
        variants = self._by_tag.get(self._key(tag))
        if variants is None:
            return None
        scheme = None if aid is None else self.scheme_for_aid(aid)
        if scheme is not None and scheme in variants:
            return variants[scheme]
        generic = variants.get(None)
        if generic is not None:
            return generic
        if scheme is None and len(variants) == 1:
            return next(iter(variants.values()))
        return None

    def name_of(self, tag: int | str | bytes, aid: bytes | str | None = None) -> str:
        """The tag's name, or ``"Unknown tag 9F99"``; never raises for a well-formed tag."""
        key = self._key(tag)
        info = self.lookup(key, aid)
        return info.name if info is not None else f"Unknown tag {key.hex().upper()}"

    def scheme_for_aid(self, aid: bytes | str) -> str | None:
        """The payment scheme (``"visa"``, ``"mastercard"``...) owning ``aid``'s RID, if known."""
        raw = _aid_bytes(aid)
        for size in range(min(len(raw), _MAX_PREFIX), _MIN_PREFIX - 1, -1):
            scheme = self._schemes.get(raw[:size])
            if scheme is not None:
                return scheme
        return None

    def all_tags(self) -> list[TagInfo]:
        """Every row, in file order (generic and scheme-specific)."""
        return list(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[TagInfo]:
        return iter(self._order)

    def _key(self, tag: int | str | bytes) -> bytes:
        # Fast path: tags taken from decoded TLVs are already bytes and usually known.
        if isinstance(tag, bytes) and tag in self._by_tag:
            return tag
        try:
            return parse_tag(tag)
        except LocalProtocolError:
            # Bytes that are not a well-formed BER tag (such as 9F99, whose second byte would
            # continue the tag) are in no dictionary: they are unknown, not an error.
            return _loose_tag_bytes(tag)


@functools.cache
def default_dictionary() -> TagDictionary:
    """The dictionary built from the shipped ``tags.csv``/``schemes.csv``, loaded once."""
    return TagDictionary.load()


def lookup(tag: int | str | bytes, aid: bytes | str | None = None) -> TagInfo | None:
    """Look ``tag`` up in the default dictionary; see :meth:`TagDictionary.lookup`.

    >>> lookup("9F02").format, lookup("9F02").length
    ('n', '6')
    """
    return default_dictionary().lookup(tag, aid)


def name_of(tag: int | str | bytes, aid: bytes | str | None = None) -> str:
    """The name of ``tag`` (scheme-specific when ``aid`` says so), or ``"Unknown tag XX"``."""
    return default_dictionary().name_of(tag, aid)


def scheme_for_aid(aid: bytes | str) -> str | None:
    """The payment scheme of an AID, e.g. ``"visa"`` for ``A0000000031010``; ``None`` if unknown.

    >>> scheme_for_aid("A0000000041010")
    'mastercard'
    """
    return default_dictionary().scheme_for_aid(aid)


def all_tags() -> list[TagInfo]:
    """Every entry of the default dictionary, in file order."""
    return default_dictionary().all_tags()


@functools.cache
def sensitive_tags() -> frozenset[str]:
    """The tags (upper-case hex) whose values are card data to hide: every tag that any
    row of the default dictionary marks sensitive, whatever its scheme, plus
    :data:`~contactless.masking.SENSITIVE_TAGS`. The one answer to "is this tag
    sensitive?" for masking and redaction.

    Any row, not the row of one AID: ``9F61`` is UnionPay's Cardholder ID Number
    (sensitive) but Mastercard's CVC3 (not), and the AID that would tell them apart may be
    missing from the data, wrong, or given for another application. Hiding a CVC3 too
    costs little; showing an ID number by mistake cannot be undone. The masking module's
    own tags are always included, so that an edited dictionary file cannot unmask a PAN.

    >>> {"5A", "5F20", "9F61"} <= sensitive_tags()
    True
    >>> "9F02" in sensitive_tags()
    False
    """
    marked = (info.tag for info in default_dictionary() if info.sensitive)
    return frozenset(marked) | SENSITIVE_TAGS


# --- loading and checking the data files ----------------------------------------------------


def _read(path: str | os.PathLike[str] | None, default: str) -> tuple[str, str]:
    """(name for messages, text) of a data file, from ``path`` or the package data."""
    try:
        if path is None:
            resource = resources.files(__package__).joinpath(default)
            return str(resource), resource.read_text(encoding="utf-8")
        with open(path, encoding="utf-8", newline="") as handle:
            return os.fspath(path), handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        name = default if path is None else os.fspath(path)
        raise ConfigError(
            f"cannot read tag dictionary file {name}: {exc}",
            remedy="reinstall contactless, or pass the path of a readable UTF-8 CSV file",
        ) from None


def _rows(text: str, name: str, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, stripped fields) of each data row after the header.

    Blank lines and lines starting with ``#`` are comments.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header_seen = False
    try:
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            fields = [field.strip() for field in row]
            if not header_seen:
                if tuple(fields) != columns:
                    raise _row_error(name, line, f"header must be {','.join(columns)}")
                header_seen = True
                continue
            if len(fields) != len(columns):
                raise _row_error(name, line, f"expected {len(columns)} fields, got {len(fields)}")
            yield line, fields
    except csv.Error as exc:
        raise _row_error(name, reader.line_num, f"not valid CSV ({exc})") from None
    if not header_seen:
        raise ConfigError(f"{name}: no header row", remedy=f"start the file with {columns}")


def _row_error(name: str, line: int, problem: str) -> ConfigError:
    return ConfigError(f"{name}, line {line}: {problem}", remedy=_REMEDY)


def _canonical_tag(text: str, name: str, line: int, what: str) -> bytes:
    """``text`` as tag bytes; it must be a well-formed tag written as upper-case hex."""
    try:
        raw = parse_tag(text)
    except LocalProtocolError as exc:
        raise _row_error(name, line, f"{what} {text!r} is not a well-formed tag ({exc})") from None
    if text != raw.hex().upper():
        raise _row_error(name, line, f"{what} {text!r} must be written {raw.hex().upper()}")
    return raw


def _check_length(text: str, name: str, line: int) -> None:
    if not _LENGTH.fullmatch(text):
        raise _row_error(name, line, f"length {text!r} is not N, N-M, N,M or var")
    for part in text.split(","):
        low, _, high = part.partition("-")
        if low != "var" and high and int(low) > int(high):
            raise _row_error(name, line, f"length range {part!r} runs backwards")


def _parse_tags(text: str, name: str, schemes: set[str]) -> list[TagInfo]:
    entries: list[TagInfo] = []
    seen: dict[tuple[bytes, str | None], int] = {}
    first_line: dict[bytes, int] = {}
    for line, fields in _rows(text, name, _TAG_COLUMNS):
        tag, scheme, title, fmt, source, templates, length, kind, sensitive = fields
        raw = _canonical_tag(tag, name, line, "tag")
        if scheme and scheme not in schemes:
            raise _row_error(name, line, f"scheme {scheme!r} is not in schemes.csv")
        key = (raw, scheme or None)
        if key in seen:
            where = f"scheme {scheme}" if scheme else "the generic meaning"
            raise _row_error(name, line, f"tag {tag} repeats line {seen[key]} for {where}")
        seen[key] = line
        first_line.setdefault(raw, line)
        if not title:
            raise _row_error(name, line, f"tag {tag} has no name")
        if fmt not in FORMATS:
            raise _row_error(name, line, f"format {fmt!r} is not one of {sorted(FORMATS)}")
        if source not in SOURCES:
            raise _row_error(name, line, f"source {source!r} is not one of {sorted(SOURCES)}")
        template_tags = tuple(templates.split())
        for template in template_tags:
            _canonical_tag(template, name, line, "template")
        _check_length(length, name, line)
        if kind not in _KINDS:
            raise _row_error(name, line, f"kind {kind!r} is not template or primitive")
        if _KINDS[kind] != bool(raw[0] & 0x20):
            bit = "constructed" if raw[0] & 0x20 else "primitive"
            raise _row_error(name, line, f"tag {tag} is {bit} in BER but listed as {kind}")
        if sensitive not in _FLAGS:
            raise _row_error(name, line, f"sensitive {sensitive!r} is not yes or no")
        entries.append(
            TagInfo(
                tag=tag,
                name=title,
                format=fmt,
                source=source,
                templates=template_tags,
                length=length,
                scheme=scheme or None,
                sensitive=_FLAGS[sensitive],
            )
        )
    # Without a generic row, a tag that several schemes define differently would have no
    # answer for an unknown scheme; demand one so that lookups without an AID stay meaningful.
    scheme_rows: dict[bytes, int] = {}
    for raw, row_scheme in seen:
        if row_scheme is not None:
            scheme_rows[raw] = scheme_rows.get(raw, 0) + 1
    for raw, count in scheme_rows.items():
        if count > 1 and (raw, None) not in seen:
            raise _row_error(
                name,
                first_line[raw],
                f"tag {raw.hex().upper()} has {count} scheme rows but no generic row",
            )
    return entries


def _parse_schemes(text: str, name: str) -> dict[bytes, str]:
    schemes: dict[bytes, str] = {}
    for line, (rid, scheme, owner) in _rows(text, name, _SCHEME_COLUMNS):
        try:
            raw = bytes.fromhex(rid)
        except ValueError:
            raise _row_error(name, line, f"RID {rid!r} is not hex") from None
        if rid != raw.hex().upper() or not _MIN_PREFIX <= len(raw) <= _MAX_PREFIX:
            raise _row_error(name, line, f"RID {rid!r} must be 5-16 bytes of upper-case hex")
        if not _SCHEME_NAME.fullmatch(scheme):
            raise _row_error(name, line, f"scheme {scheme!r} must be lower-case letters/digits")
        if not owner:
            raise _row_error(name, line, f"RID {rid} has no owner")
        if raw in schemes:
            raise _row_error(name, line, f"RID {rid} is listed twice")
        schemes[raw] = scheme
    return schemes


def _loose_tag_bytes(tag: int | str | bytes) -> bytes:
    """The bytes of a tag-like value that ``parse_tag`` rejected; raise if there are none."""
    raw = b""
    if isinstance(tag, bytes | bytearray):
        raw = bytes(tag)
    elif isinstance(tag, str):
        try:
            raw = bytes.fromhex(tag.replace(" ", "").replace(":", ""))
        except ValueError:
            raw = b""
    elif isinstance(tag, int) and not isinstance(tag, bool) and 0 < tag <= 0xFFFFFFFF:
        raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    if not raw:
        raise LocalProtocolError(f"{tag!r} is not a tag (give an int, hex str or bytes)")
    return raw


def _aid_bytes(aid: bytes | str) -> bytes:
    """An AID given as bytes or hex text (spaces, colons and lower case allowed)."""
    if isinstance(aid, bytes | bytearray):
        return bytes(aid)
    if isinstance(aid, str):
        try:
            return bytes.fromhex(aid.replace(" ", "").replace(":", ""))
        except ValueError:
            raise LocalProtocolError(f"AID {aid!r} is not hex") from None
    raise LocalProtocolError(f"an AID must be bytes or hex str, not {type(aid).__name__}")
