"""Baselines: what a healthy terminal looked like before an upgrade, to compare after it.

A baseline is a JSON document::

    {
      "format": "contactless-baseline",
      "schema_version": 1,
      "created": "2025-05-17T12:00:00+00:00",
      "software": {"version": "0.1.0", "tlv_implementation": "c", "backends": {...}},
      "reader": {"uri": "pcsc:", "vendor": ..., "model": ..., "firmware": ...,
                 "serial": ..., "driver": ..., "features": [...]},
      "card": {"atr": "3B8F...", "aid": "A0000000031010", "brand": "visa",
               "masked_pan": "************0010", "expiry": "2028-12",
               "fingerprint": {"kdf": "scrypt", "n": 16384, "r": 8, "p": 1,
                               "salt": "...", "hash": "..."}},
      "config": {"path": "terminal.toml", "sha256": "...", "values": {...}},
      "link": {"loops": 50, "first_try_rate": 1.0, "success_rate": 1.0,
               "p50_ms": 0.1, "p95_ms": 0.2, "p99_ms": 0.3},
      "checksum": "sha256:..."
    }

``checksum`` is the SHA-256 of the rest of the document in canonical JSON (sorted keys,
no spaces). A baseline whose checksum, JSON or structure is wrong is *damaged*:
:func:`load_baseline` raises :class:`BaselineDamaged`, and the self-test reports it as
evidence of a data anomaly instead of trusting it.

No PAN is stored. The test card is recognised by a salted scrypt hash of its PAN, and
shown by its last four digits only: with the first six digits as well, the few unknown
digits left could be found by trying every number against the hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ContactlessError
from ..hexutil import parse_hex, to_hex

__all__ = [
    "BASELINE_FORMAT",
    "SCHEMA_VERSION",
    "Baseline",
    "BaselineCard",
    "BaselineConfig",
    "BaselineDamaged",
    "BaselineLink",
    "BaselineReader",
    "BaselineSoftware",
    "Fingerprint",
    "load_baseline",
    "pan_hint",
    "parse_baseline",
    "save_baseline",
]

BASELINE_FORMAT = "contactless-baseline"
#: The schema this code writes and reads.
SCHEMA_VERSION = 1

#: scrypt cost for the card fingerprint (about 50 ms, 16 MiB), and the most a baseline may
#: ask for (a crafted file must not make the self-test allocate gigabytes).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAX_SCRYPT_N, _MAX_SCRYPT_R, _MAX_SCRYPT_P = 2**16, 16, 4
#: Largest baseline file read (they are a few kB).
MAX_BASELINE_BYTES = 1 << 20


class BaselineDamaged(Exception):
    """A baseline that cannot be trusted. ``outcome`` is the self-test outcome id
    (``baseline.unreadable``, ``baseline.checksum_mismatch``, ``baseline.malformed``,
    ``baseline.unsupported``); ``params`` the values its message shows."""

    def __init__(self, outcome: str, detail: str, **params: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.params = params


@dataclass(frozen=True)
class Fingerprint:
    """A salted scrypt hash of a PAN: recognises the same card without storing it."""

    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def of(cls, pan: str, *, salt: bytes | None = None) -> Fingerprint:
        """The fingerprint of ``pan`` with a fresh random salt (or ``salt``)."""
        salt = os.urandom(16) if salt is None else salt
        return cls(salt, _scrypt(pan, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    def matches(self, pan: str) -> bool:
        """Whether ``pan`` is the card this fingerprint was taken from."""
        candidate = _scrypt(pan, self.salt, self.n, self.r, self.p)
        return hmac.compare_digest(candidate, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "kdf": "scrypt",
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "salt": to_hex(self.salt),
            "hash": to_hex(self.digest),
        }


def _scrypt(pan: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pan.encode("ascii"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=32,
        maxmem=2 * 128 * r * n * p + (1 << 20),
    )


def pan_hint(pan: str) -> str:
    """The PAN with all but the last four digits masked (``************0010``)."""
    return "*" * max(len(pan) - 4, 0) + pan[-4:]


@dataclass(frozen=True)
class BaselineSoftware:
    version: str
    tlv_implementation: str
    backends: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class BaselineReader:
    uri: str
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    driver: str | None = None
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineCard:
    atr: str | None
    aid: str | None
    brand: str | None
    masked_pan: str | None
    expiry: str | None
    fingerprint: Fingerprint | None


@dataclass(frozen=True)
class BaselineConfig:
    path: str | None
    sha256: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class BaselineLink:
    loops: int
    first_try_rate: float
    success_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Baseline:
    """A terminal's state before an upgrade (see the module docstring for the file)."""

    created: str
    software: BaselineSoftware
    config: BaselineConfig
    reader: BaselineReader | None = None
    card: BaselineCard | None = None
    link: BaselineLink | None = None
    #: The file it was read from, when it was.
    source: str | None = field(default=None, compare=False)

    def to_document(self) -> dict[str, Any]:
        """The JSON document, checksum included."""
        body: dict[str, Any] = {
            "format": BASELINE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "software": {
                "version": self.software.version,
                "tlv_implementation": self.software.tlv_implementation,
                "backends": dict(sorted(self.software.backends.items())),
            },
            "reader": None,
            "card": None,
            "config": {
                "path": self.config.path,
                "sha256": self.config.sha256,
                "values": dict(self.config.values),
            },
            "link": None,
        }
        if self.reader is not None:
            body["reader"] = {
                "uri": self.reader.uri,
                "vendor": self.reader.vendor,
                "model": self.reader.model,
                "firmware": self.reader.firmware,
                "serial": self.reader.serial,
                "driver": self.reader.driver,
                "features": list(self.reader.features),
            }
        if self.card is not None:
            fingerprint = self.card.fingerprint
            body["card"] = {
                "atr": self.card.atr,
                "aid": self.card.aid,
                "brand": self.card.brand,
                "masked_pan": self.card.masked_pan,
                "expiry": self.card.expiry,
                "fingerprint": fingerprint.to_json() if fingerprint is not None else None,
            }
        if self.link is not None:
            body["link"] = {
                "loops": self.link.loops,
                "first_try_rate": self.link.first_try_rate,
                "success_rate": self.link.success_rate,
                "p50_ms": self.link.p50_ms,
                "p95_ms": self.link.p95_ms,
                "p99_ms": self.link.p99_ms,
            }
        body["checksum"] = _checksum(body)
        return body


def _checksum(body: Mapping[str, Any]) -> str:
    unsigned = {key: value for key, value in body.items() if key != "checksum"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + to_hex(hashlib.sha256(canonical.encode("utf-8")).digest())


def _checksum_matches(recorded: str, body: Mapping[str, Any]) -> bool:
    # Hex is written upper-case; read in either case, as every hex parser here does.
    algorithm, _, value = recorded.partition(":")
    expected = _checksum(body).partition(":")[2]
    return algorithm == "sha256" and hmac.compare_digest(value.upper(), expected)


def save_baseline(path: str | os.PathLike[str], baseline: Baseline) -> None:
    """Write ``baseline`` to ``path`` atomically (a crash leaves the old file or the new
    one, never half of one). Raises :class:`~contactless.errors.ConfigError` when the
    file cannot be written."""
    target = Path(path)
    text = json.dumps(baseline.to_document(), indent=2, ensure_ascii=False) + "\n"
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
            "w", encoding="utf-8", dir=target.parent or ".", prefix=".baseline-", delete=False
        )
    except OSError as error:
        raise ConfigError(f"baseline {target}: cannot write: {error.strerror}") from None
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise ConfigError(f"baseline {target}: cannot write: {error.strerror}") from None


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and verify the baseline at ``path``.

    Raises :class:`~contactless.errors.ConfigError` when there is no such file (the
    self-test cannot compare with nothing), and :class:`BaselineDamaged` when the file
    is there but cannot be trusted.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_BASELINE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"baseline {name}: file not found",
            remedy="give the file saved with `contactless baseline save` before the upgrade",
        ) from None
    except IsADirectoryError:
        # A usage error, like a missing file: the technician named a folder, not a file.
        raise ConfigError(
            f"baseline {name}: is a directory, not a baseline file",
            remedy="give the file saved with `contactless baseline save`, not its folder",
        ) from None
    except OSError as error:
        raise BaselineDamaged("baseline.unreadable", f"cannot read: {error.strerror}") from None
    if len(raw) > MAX_BASELINE_BYTES:
        raise BaselineDamaged("baseline.unreadable", f"larger than {MAX_BASELINE_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BaselineDamaged("baseline.unreadable", f"not JSON: {error}") from None
    baseline = parse_baseline(document)
    return Baseline(
        baseline.created,
        baseline.software,
        baseline.config,
        baseline.reader,
        baseline.card,
        baseline.link,
        source=name,
    )


# --- reading a document, field by field ----------------------------------------------------


class _Reader:
    """Typed access to a JSON object that names the field in every complaint."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            name = where or "document"
            raise BaselineDamaged("baseline.malformed", f"{name} is not an object", field=name)
        self.value = value
        self.where = where

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool) -> Any:
        name = self._name(key)
        if key not in self.value:
            if optional:
                return None
            raise BaselineDamaged("baseline.malformed", f"{name} is missing", field=name)
        value = self.value[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in kinds:
            value = object()  # JSON true is not a number here
        if not isinstance(value, kinds):
            raise BaselineDamaged("baseline.malformed", f"{name} has the wrong type", field=name)
        return value

    def text(self, key: str, *, optional: bool = False) -> Any:
        return self._get(key, (str,), optional)

    def number(self, key: str, *, optional: bool = False) -> Any:
        value = self._get(key, (int, float), optional)
        return None if value is None else float(value)

    def integer(self, key: str) -> int:
        value: int = self._get(key, (int,), False)
        return value

    def flag(self, key: str) -> bool:
        value: bool = self._get(key, (bool,), False)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key, (list,), False)
        if not all(isinstance(item, str) for item in value):
            name = self._name(key)
            raise BaselineDamaged("baseline.malformed", f"{name} is not a list of text", field=name)
        return tuple(value)

    def obj(self, key: str) -> _Reader:
        return _Reader(self._get(key, (dict,), False), self._name(key))

    def maybe_obj(self, key: str) -> _Reader | None:
        value = self._get(key, (dict,), True)
        return None if value is None else _Reader(value, self._name(key))

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def hex(self, key: str) -> bytes:
        text: str = self.text(key)
        try:
            return parse_hex(text, what=self._name(key))
        except ContactlessError:
            name = self._name(key)
            raise BaselineDamaged("baseline.malformed", f"{name} is not hex", field=name) from None


def parse_baseline(document: object) -> Baseline:
    """Check and read a baseline document (see :func:`load_baseline`)."""
    top = _Reader(document, "")
    if top.value.get("format") != BASELINE_FORMAT:
        raise BaselineDamaged("baseline.malformed", "not a contactless baseline", field="format")
    version = top.value.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineDamaged(
            "baseline.unsupported",
            f"schema version {version!r}, this software reads {SCHEMA_VERSION}",
            version=str(version),
            supported=str(SCHEMA_VERSION),
        )
    checksum = top.text("checksum")
    if not _checksum_matches(checksum, top.value):
        raise BaselineDamaged("baseline.checksum_mismatch", "the checksum does not match")
    return Baseline(
        created=top.text("created"),
        software=_software(top),
        config=_config(top),
        reader=_reader(top),
        card=_card(top),
        link=_link(top),
    )


def _software(top: _Reader) -> BaselineSoftware:
    software = top.obj("software")
    backends = software.obj("backends")
    return BaselineSoftware(
        version=software.text("version"),
        tlv_implementation=software.text("tlv_implementation"),
        backends={key: backends.flag(key) for key in backends.value},
    )


def _config(top: _Reader) -> BaselineConfig:
    config = top.obj("config")
    values = config.obj("values")
    return BaselineConfig(config.text("path", optional=True), config.text("sha256"), values.value)


def _reader(top: _Reader) -> BaselineReader | None:
    reader = top.maybe_obj("reader")
    if reader is None:
        return None
    return BaselineReader(
        uri=reader.text("uri"),
        vendor=reader.text("vendor", optional=True),
        model=reader.text("model", optional=True),
        firmware=reader.text("firmware", optional=True),
        serial=reader.text("serial", optional=True),
        driver=reader.text("driver", optional=True),
        features=reader.texts("features"),
    )


def _card(top: _Reader) -> BaselineCard | None:
    card = top.maybe_obj("card")
    if card is None:
        return None
    fingerprint = None
    kdf = card.maybe_obj("fingerprint")
    if kdf is not None:
        if kdf.text("kdf") != "scrypt":
            raise BaselineDamaged("baseline.malformed", "unknown KDF", field="card.fingerprint")
        n, r, p = kdf.integer("n"), kdf.integer("r"), kdf.integer("p")
        # n must be a power of two > 1; the limits keep a crafted file from costing much.
        if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= _MAX_SCRYPT_R):
            raise BaselineDamaged("baseline.malformed", "scrypt cost", field="card.fingerprint")
        if not 0 < p <= _MAX_SCRYPT_P:
            raise BaselineDamaged("baseline.malformed", "scrypt cost", field="card.fingerprint")
        fingerprint = Fingerprint(kdf.hex("salt"), kdf.hex("hash"), n, r, p)
    return BaselineCard(
        atr=card.text("atr", optional=True),
        aid=card.text("aid", optional=True),
        brand=card.text("brand", optional=True),
        masked_pan=card.text("masked_pan", optional=True),
        expiry=card.text("expiry", optional=True),
        fingerprint=fingerprint,
    )


def _link(top: _Reader) -> BaselineLink | None:
    link = top.maybe_obj("link")
    if link is None:
        return None
    return BaselineLink(
        loops=link.integer("loops"),
        first_try_rate=link.number("first_try_rate"),
        success_rate=link.number("success_rate"),
        p50_ms=link.number("p50_ms", optional=True),
        p95_ms=link.number("p95_ms", optional=True),
        p99_ms=link.number("p99_ms", optional=True),
    )
