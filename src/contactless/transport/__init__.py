"""Reader backends, chosen by the scheme of a reader URI (``pcsc:``, ``nfc:``, ``sim:``...).

Backends are registered as ``"module:Class"`` strings and imported only when a URI of
their scheme is opened or :func:`detect` asks them for readers, so ``import contactless``
never loads pyscard or nfcpy (the python-can interface registry, done lazily). Other
packages add schemes through the entry-point group ``contactless.transports``::

    [project.entry-points."contactless.transports"]
    myreader = "mypackage.reader:MyReaderTransport"

Built-in schemes win over a plugin that claims the same name.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import time
from typing import Any

from ..errors import (
    BackendUnavailable,
    ConfigError,
    ContactlessError,
    LocalProtocolError,
)
from .base import (
    DEFAULT_TIMEOUT,
    ExchangeEvent,
    ReaderIdentity,
    ReaderInfo,
    Tracer,
    Transport,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENTRY_POINT_GROUP",
    "EXTRAS",
    "SCHEMES",
    "ExchangeEvent",
    "ReaderIdentity",
    "ReaderInfo",
    "Tracer",
    "Transport",
    "detect",
    "open",
    "schemes",
    "split_uri",
    "transport_class",
]

logger = logging.getLogger("contactless.transport")

#: Built-in schemes -> "module:Class" of their backend.
SCHEMES: dict[str, str] = {
    "pcsc": "contactless.transport.pcsc:PcscTransport",
    "nfc": "contactless.transport.nfc:NfcTransport",
    "sim": "contactless.transport.sim:SimTransport",
    "replay": "contactless.transport.replay:ReplayTransport",
}

#: Built-in schemes that need an optional extra -> (extra name, the package it installs).
EXTRAS: dict[str, tuple[str, str]] = {
    "pcsc": ("pcsc", "pyscard"),
    "nfc": ("nfc", "nfcpy"),
}

#: Entry-point group through which other packages register schemes.
ENTRY_POINT_GROUP = "contactless.transports"

#: Seconds :func:`detect` gives all backends together to list their readers.
DETECT_TIMEOUT = 5.0


def schemes() -> dict[str, str]:
    """Every known scheme -> ``"module:Class"``: the built-ins plus entry-point plugins."""
    known: dict[str, str] = {}
    # Imported here: importlib.metadata costs ~20 ms, and only plugin lookups need it.
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        name = entry.name.lower()
        if name in SCHEMES:
            logger.warning(
                "ignoring %s entry point %r=%r: the %s: scheme is built in",
                ENTRY_POINT_GROUP,
                entry.name,
                entry.value,
                name,
            )
            continue
        known.setdefault(name, entry.value)
    return {**SCHEMES, **known}


def split_uri(uri: str) -> tuple[str, str]:
    """Split a reader URI into (scheme, rest): ``"sim:visa?x=1"`` -> ``("sim", "visa?x=1")``.

    Raises :class:`~contactless.errors.ConfigError` when there is no scheme.
    """
    if not isinstance(uri, str):
        raise ConfigError(f"a reader URI must be a string, got {type(uri).__name__}")
    scheme, colon, rest = uri.strip().partition(":")
    if not colon or not scheme:
        raise ConfigError(
            f"reader URI {uri!r} has no scheme",
            remedy=f"write it as SCHEME:..., with SCHEME one of {_known_list()}",
        )
    return scheme.lower(), rest


def _known_list() -> str:
    return ", ".join(f"{name}:" for name in sorted(schemes()))


def transport_class(scheme: str) -> type[Transport]:
    """Import and return the backend class for ``scheme``.

    Raises :class:`~contactless.errors.ConfigError` for an unknown scheme (listing the known
    ones) and :class:`~contactless.errors.BackendUnavailable` when the backend cannot be
    loaded, naming the extra to install.
    """
    scheme = scheme.lower().rstrip(":")
    # Built-ins win over plugins anyway, so only a non-built-in scheme pays for reading the
    # installed distributions' entry points (about 1.5 ms, on every open otherwise).
    target = SCHEMES.get(scheme) or schemes().get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown reader scheme {scheme + ':'!r}",
            remedy=f"use one of {_known_list()}",
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _unavailable(scheme, module_name, error) from error
    except Exception as error:  # a broken plugin must not crash `contactless readers`
        raise BackendUnavailable(
            f"the {scheme}: backend ({module_name}) failed to load: "
            f"{type(error).__name__}: {error}",
            remedy="reinstall the package that provides it",
        ) from error
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise BackendUnavailable(
            f"the {scheme}: backend {target!r} does not name a contactless Transport class",
            remedy="fix the entry point of the package that registers it",
        )
    return cls


def _unavailable(scheme: str, module_name: str, error: ImportError) -> BackendUnavailable:
    missing = getattr(error, "name", None) or ""
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        # The backend module itself is absent: this installation predates it.
        return BackendUnavailable(
            f"the {scheme}: backend ({module_name}) is not part of this installation",
            remedy="upgrade contactless, or use another reader scheme",
        )
    if scheme in EXTRAS:
        extra, package = EXTRAS[scheme]
        return BackendUnavailable(
            f"the {scheme}: backend needs {package}, which cannot be imported ({error})",
            remedy=f"install the extra: pip install 'contactless[{extra}]'",
        )
    return BackendUnavailable(
        f"the {scheme}: backend ({module_name}) cannot be imported ({error})",
        remedy="install the package that provides it, with its dependencies",
    )


def open(uri: str, **options: Any) -> Transport:
    """Open the reader named by ``uri`` and return it connected.

    ``options`` go to the backend's constructor (every backend takes ``timeout``, the
    default seconds per exchange). Close it with ``disconnect()`` or use it as a context
    manager; :func:`contactless.open_reader` does both.
    """
    scheme, _ = split_uri(uri)
    cls = transport_class(scheme)
    try:
        inspect.signature(cls).bind(uri, **options)
    except TypeError as error:
        raise LocalProtocolError(
            f"the {scheme}: backend does not accept the options {sorted(options)}: {error}"
        ) from None
    transport = cls(uri, **options)
    transport.connect()
    return transport


def detect(*, timeout: float = DETECT_TIMEOUT) -> list[ReaderInfo]:
    """List the readers available on this machine, asking every backend in parallel.

    Entries with ``available=True`` are readers whose ``uri`` can be opened. A backend with
    nothing to open (its extra is missing, its service is down, it found no reader, it did
    not answer within ``timeout`` seconds) appears as one entry with ``available=False``
    and the reason in ``detail``; this function itself does not raise for them.
    """
    names = sorted(schemes())
    results: dict[str, list[ReaderInfo]] = {}

    def probe(scheme: str) -> None:
        results[scheme] = _detect_one(scheme)

    threads = [
        threading.Thread(target=probe, args=(name,), name=f"contactless detect {name}", daemon=True)
        for name in names
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    found: list[ReaderInfo] = []
    for name in names:
        late = [_backend_entry(name, f"did not answer within {timeout:g} s")]
        found.extend(results.get(name) or late)
    return found


def _backend_entry(scheme: str, detail: str) -> ReaderInfo:
    """The one entry standing for a backend with nothing to open."""
    return ReaderInfo(f"{scheme}:", f"{scheme} backend", None, scheme, detail, available=False)


def _detect_one(scheme: str) -> list[ReaderInfo]:
    try:
        readers = transport_class(scheme).detect()
    except ContactlessError as error:
        return [_backend_entry(scheme, str(error))]
    except Exception as error:  # a plugin bug is reported, not raised
        return [_backend_entry(scheme, f"detection failed: {type(error).__name__}: {error}")]
    # An empty list would hide the backend; say that it works but found nothing.
    return list(readers) or [_backend_entry(scheme, "no readers found")]
