"""``sim:PROFILE[?key=value&...]``: an emulated card on an in-process simulated reader.

The card is :class:`contactless.emulator.card.VirtualCard` loaded with a brand profile
(``sim:visa``, ``sim:mastercard``...); the query string injects faults, parsed by
:func:`contactless.emulator.faults.parse_faults` (unknown keys are a ConfigError naming
the valid ones)::

    sim:visa?latency_ms=40               every answer takes 40 ms (never past the deadline)
    sim:visa?error_rate=0.2&seed=7       20 % of APDUs fail with a transmission error
    sim:visa?mute_after=3                the card answers 3 APDUs, then stays silent
    sim:visa?hang_after=3                the reader answers 3 APDUs, then stops responding
    sim:visa?remove_after=5              the card leaves the field during the 6th APDU
    sim:visa?firmware=1.2.3              the reader reports this firmware version
    sim:visa?t0=1&pin_tries=0            card options, passed to the emulator

APDUs are counted from connect(); a reconnect powers the card up again (its ATC kept),
puts it back on the reader and clears the faults' state. Each failure is the typed error
a real reader would give, raised no later than the exchange's deadline.
"""

from __future__ import annotations

import random
import time

from .._version import __version__
from ..emulator.card import VirtualCard
from ..emulator.faults import Faults, parse_faults
from ..emulator.profiles import list_profiles, load_profile
from ..errors import CardRemoved, ConfigError, TransportError, TransportTimeout
from .base import ReaderIdentity, ReaderInfo, Transport, describe_apdu

__all__ = ["SimTransport"]

VENDOR = "contactless"
MODEL = "simulated reader"


class SimTransport(Transport):
    """An emulated card on a simulated reader, with faults from the URI's query string."""

    scheme = "sim"
    # _transmit never sleeps past its timeout, so no watchdog thread is needed.
    enforces_deadline = True

    def __init__(self, uri: str, *, timeout: float | None = None) -> None:
        super().__init__(uri, timeout=timeout)
        scheme, _, rest = uri.partition(":")
        if scheme.lower() != self.scheme:
            raise ConfigError(f"{uri!r} is not a sim: URI")
        name, _, query = rest.partition("?")
        name = name.strip()
        if not name:
            raise ConfigError(
                f"reader URI {uri!r} names no card profile",
                remedy="write sim:PROFILE, with PROFILE one of "
                + ", ".join(sorted(list_profiles())),
            )
        self.profile_name = name
        self._profile = load_profile(name)
        self.faults: Faults = parse_faults(query)
        self._card: VirtualCard | None = None
        self._sent = 0
        self._removed = False
        self._rng = random.Random(self.faults.seed)
        self.identity = ReaderIdentity(
            vendor=VENDOR,
            model=MODEL,
            firmware=self.faults.firmware or __version__,
            serial=f"SIM-{self.profile_name.upper()}",
            driver=__name__,
        )

    def _connect(self) -> None:
        if self._card is None:
            self._card = VirtualCard(self._profile, options=self.faults.card_options)
        else:
            self._card.reset()  # back on the reader: powered up again, ATC kept
        self._sent = 0
        self._removed = False
        self._rng = random.Random(self.faults.seed)
        self.atr = self._card.atr
        self.ats = self._card.ats
        self.uid = self._card.uid

    def _disconnect(self) -> None:
        # The card object is kept so that a reconnect sees the same card (same ATC).
        self._sent = 0

    def _card_present(self) -> bool:
        return self._card is not None and not self._removed

    def _transmit(self, apdu: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        what = describe_apdu(apdu)
        faults = self.faults
        if self._removed or self._card is None:
            raise CardRemoved(f"{what} not sent: the card was removed from {self.uri}")
        self._sent += 1
        if faults.remove_after is not None and self._sent > faults.remove_after:
            self._removed = True
            raise CardRemoved(f"card removed during {what}")
        if faults.hang_after is not None and self._sent > faults.hang_after:
            self._sleep_until(deadline)
            raise TransportTimeout(
                f"no answer to {what} within {timeout:g} s: the reader {self.uri} stopped "
                "responding",
                remedy="unplug and replug the reader; if it keeps happening, update its firmware",
            )
        if faults.mute_after is not None and self._sent > faults.mute_after:
            self._sleep_until(deadline)
            raise TransportTimeout(f"no answer to {what} within {timeout:g} s: the card is silent")
        if faults.latency_ms:
            delay = faults.latency_ms / 1000.0
            if time.monotonic() + delay > deadline:
                self._sleep_until(deadline)
                raise TransportTimeout(
                    f"no answer to {what} within {timeout:g} s "
                    f"(the simulated reader takes {faults.latency_ms:g} ms per APDU)"
                )
            time.sleep(delay)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            raise TransportError(
                f"transmission error during {what} (simulated, error_rate={faults.error_rate:g})",
                remedy="hold the card still in the middle of the reader and try again",
            )
        return self._card.process(apdu)

    @staticmethod
    def _sleep_until(deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    @classmethod
    def detect(cls) -> list[ReaderInfo]:
        """One entry per emulator profile, e.g. ``sim:visa``."""
        return [
            ReaderInfo(
                uri=f"sim:{name}",
                name=load_profile(name).description,
                card_present=True,
                backend=cls.scheme,
                detail="emulated in-process",
            )
            for name in sorted(list_profiles())
        ]
