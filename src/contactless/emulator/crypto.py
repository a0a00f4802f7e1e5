"""Card-side cryptography for the virtual card: DES, ISO 9797-1 MACs, EMV key derivation.

Pure Python on purpose (no ``cryptography``/pycryptodome dependency): the emulator computes
a handful of DES blocks per transaction, so speed does not matter, and the code here is the
spec in readable form.

Application cryptograms (ARQC, TC, AAC) follow EMV Book 2 section 8.1 and Annex A1:

1. ICC master key from the issuer master key (IMK), EMV option A (Annex A1.4.1; option B,
   A1.4.2, for PANs longer than 16 digits);
2. a session key per transaction (Annex A1.3.1 "common session key": R = ATC || 00 * 6,
   or Mastercard's R = ATC || 00 00 || UN), or none (Visa CVN 10 uses the ICC master key);
3. ISO/IEC 9797-1 MAC algorithm 3 (single-DES CBC, triple-DES last block) with padding
   method 1 or 2 over: Amount, Authorised (9F02) || Amount, Other (9F03) || Terminal Country
   Code (9F1A) || TVR (95) || Transaction Currency Code (5F2A) || Transaction Date (9A) ||
   Transaction Type (9C) || Unpredictable Number (9F37) [the terminal data recommended by
   Book 2 8.1.1, taken from the CDOL1/PDOL data] || AIP (82) || ATC (9F36) || the whole
   Issuer Application Data (9F10) or the Card Verification Results inside it.

:data:`METHODS` names the combinations used by the profiles; each profile names its method
and a test issuer master key in its ``[cryptogram]`` table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "METHODS",
    "TERMINAL_DATA_TAGS",
    "CryptogramMethod",
    "adjust_parity",
    "application_cryptogram",
    "common_session_key",
    "des_decrypt",
    "des_encrypt",
    "icc_master_key",
    "mac_iso9797_alg3",
    "pad_iso9797",
    "tdes_encrypt",
]

# --- DES (FIPS 46-3) tables, bit positions counted from 1 at the most significant bit ------

_IP = (
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
)  # fmt: skip
_FP = tuple(_IP.index(position) + 1 for position in range(1, 65))
_PC1 = (
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
)  # fmt: skip
_PC2 = (
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
)  # fmt: skip
_SHIFTS = (1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1)
_P = (
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
)  # fmt: skip
_SBOXES = (
    (14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
     0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
     4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
     15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13),
    (15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
     3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
     0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
     13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9),
    (10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
     13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
     13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
     1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12),
    (7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
     13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
     10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
     3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14),
    (2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
     14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
     4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
     11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3),
    (12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
     10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
     9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
     4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13),
    (4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
     13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
     1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
     6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12),
    (13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
     1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
     7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
     2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11),
)  # fmt: skip


def _permute(value: int, table: tuple[int, ...], width: int) -> int:
    """Output bit i (from the left) is input bit ``table[i]`` of a ``width``-bit value."""
    out = 0
    for position in table:
        out = (out << 1) | ((value >> (width - position)) & 1)
    return out


def _sp_boxes() -> tuple[tuple[int, ...], ...]:
    # S-box i followed by the P permutation, for every 6-bit input: one lookup per S-box.
    boxes = []
    for index, sbox in enumerate(_SBOXES):
        entries = []
        for six in range(64):
            row = ((six >> 4) & 0b10) | (six & 1)
            column = (six >> 1) & 0xF
            nibble = sbox[row * 16 + column]
            entries.append(_permute(nibble << (28 - 4 * index), _P, 32))
        boxes.append(tuple(entries))
    return tuple(boxes)


_SP = _sp_boxes()


@lru_cache(maxsize=64)
def _subkeys(key: bytes) -> tuple[tuple[int, ...], ...]:
    """The 16 round keys of an 8-byte DES key, each as eight 6-bit S-box inputs."""
    cd = _permute(int.from_bytes(key, "big"), _PC1, 64)
    c, d = cd >> 28, cd & 0x0FFFFFFF
    rounds = []
    for shift in _SHIFTS:
        c = ((c << shift) | (c >> (28 - shift))) & 0x0FFFFFFF
        d = ((d << shift) | (d >> (28 - shift))) & 0x0FFFFFFF
        k = _permute((c << 28) | d, _PC2, 56)
        rounds.append(tuple((k >> (42 - 6 * i)) & 0x3F for i in range(8)))
    return tuple(rounds)


def _feistel(right: int, subkey: tuple[int, ...]) -> int:
    # The expansion E takes 6 bits per S-box from R rotated right by one, with wrap-around:
    # doubling the rotated word lets the last S-box read across the end.
    rotated = ((right >> 1) | (right << 31)) & 0xFFFFFFFF
    doubled = (rotated << 32) | rotated
    out = 0
    for index in range(8):
        out |= _SP[index][((doubled >> (58 - 4 * index)) & 0x3F) ^ subkey[index]]
    return out


def _des_block(block: bytes, key: bytes, decrypt: bool) -> bytes:
    if len(block) != 8 or len(key) != 8:
        raise ValueError("DES works on 8-byte blocks with 8-byte keys")
    rounds = _subkeys(bytes(key))
    if decrypt:
        rounds = rounds[::-1]
    value = _permute(int.from_bytes(block, "big"), _IP, 64)
    left, right = value >> 32, value & 0xFFFFFFFF
    for subkey in rounds:
        left, right = right, left ^ _feistel(right, subkey)
    return _permute((right << 32) | left, _FP, 64).to_bytes(8, "big")


def des_encrypt(key: bytes, block: bytes) -> bytes:
    """Single-DES encryption of one 8-byte block (parity bits of ``key`` are ignored)."""
    return _des_block(block, key, decrypt=False)


def des_decrypt(key: bytes, block: bytes) -> bytes:
    """Single-DES decryption of one 8-byte block."""
    return _des_block(block, key, decrypt=True)


def tdes_encrypt(key: bytes, data: bytes) -> bytes:
    """Triple-DES (EDE) in ECB mode with a 16-byte (K1 K2 K1) or 24-byte key."""
    if len(key) not in (16, 24) or len(data) % 8:
        raise ValueError("triple DES needs a 16- or 24-byte key and whole 8-byte blocks")
    k1, k2, k3 = key[:8], key[8:16], key[16:24] or key[:8]
    out = bytearray()
    for start in range(0, len(data), 8):
        block = data[start : start + 8]
        out += des_encrypt(k3, des_decrypt(k2, des_encrypt(k1, block)))
    return bytes(out)


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (how DES keys are stored)."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) & 1) for b in key)


# --- ISO/IEC 9797-1 ------------------------------------------------------------------------


def pad_iso9797(data: bytes, method: int) -> bytes:
    """Padding method 1 (zeros; none for a non-empty whole block) or 2 (80 then zeros)."""
    if method == 1:
        if data and len(data) % 8 == 0:
            return data
        return data + bytes(-len(data) % 8 or 8)
    if method == 2:
        padded = data + b"\x80"
        return padded + bytes(-len(padded) % 8)
    raise ValueError(f"ISO 9797-1 padding method must be 1 or 2, not {method}")


def mac_iso9797_alg3(key: bytes, data: bytes, padding: int = 2) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC") with a 16-byte key KL || KR.

    CBC with single DES under KL over every block, then the last result is decrypted
    under KR and encrypted again under KL. Returns the full 8-byte MAC.
    """
    if len(key) != 16:
        raise ValueError("MAC algorithm 3 needs a 16-byte (double-length) key")
    left, right = key[:8], key[8:]
    padded = pad_iso9797(data, padding)
    state = bytes(8)
    for start in range(0, len(padded), 8):
        block = padded[start : start + 8]
        state = des_encrypt(left, bytes(a ^ b for a, b in zip(state, block, strict=True)))
    return des_encrypt(left, des_decrypt(right, state))


# --- EMV key derivation (Book 2 Annex A1) --------------------------------------------------


def _decimalise(digest_hex: str) -> str:
    digits = [c for c in digest_hex if c.isdigit()]
    if len(digits) < 16:
        # Not enough decimal digits: A-F count as 0-5, in the order they appear.
        digits += [str(int(c, 16) - 10) for c in digest_hex if not c.isdigit()]
    return "".join(digits[:16])


def icc_master_key(
    issuer_master_key: bytes,
    pan: str,
    pan_sequence: str = "00",
    option: Literal["A", "B"] = "B",
) -> bytes:
    """The ICC master key for ``pan`` and its sequence number (two digits).

    Option A (Book 2 A1.4.1): Y = the rightmost 16 digits of PAN || PSN; the key is
    3DES(IMK)[Y] || 3DES(IMK)[Y xor FF..FF], with odd parity. Option B (A1.4.2) is option A
    for PANs of up to 16 digits; for longer PANs Y = 16 decimal digits of SHA-1(PAN || PSN).
    """
    if option == "A" or len(pan) <= 16:
        y = bytes.fromhex((pan + pan_sequence)[-16:].rjust(16, "0"))
    else:
        text = pan + pan_sequence
        digest = hashlib.sha1(bytes.fromhex(text.rjust(len(text) + len(text) % 2, "0")))
        y = bytes.fromhex(_decimalise(digest.hexdigest()))
    inverted = bytes(b ^ 0xFF for b in y)
    return adjust_parity(tdes_encrypt(issuer_master_key, y + inverted))


def common_session_key(master_key: bytes, diversifier: bytes) -> bytes:
    """EMV common session key derivation (Book 2 A1.3.1) from an 8-byte value R.

    SK = 3DES(MK)[R0 R1 F0 R3..R7] || 3DES(MK)[R0 R1 0F R3..R7], with odd parity.
    """
    if len(diversifier) != 8:
        raise ValueError("the session key diversifier R must be 8 bytes")
    left = diversifier[:2] + b"\xf0" + diversifier[3:]
    right = diversifier[:2] + b"\x0f" + diversifier[3:]
    return adjust_parity(tdes_encrypt(master_key, left + right))


# --- application cryptograms ---------------------------------------------------------------

#: Terminal data in the cryptogram, in order (EMV Book 2 8.1.1, recommended minimum set).
TERMINAL_DATA_TAGS: tuple[bytes, ...] = (
    b"\x9f\x02",
    b"\x9f\x03",
    b"\x9f\x1a",
    b"\x95",
    b"\x5f\x2a",
    b"\x9a",
    b"\x9c",
    b"\x9f\x37",
)


@dataclass(frozen=True, slots=True)
class CryptogramMethod:
    """How one cryptogram version computes the AC (see the module docstring)."""

    description: str
    #: ICC master key derivation option (Book 2 A1.4): "A", or "B" (differs for PANs > 16).
    master_key_derivation: Literal["A", "B"]
    #: "none": the ICC master key itself; "common": R = ATC || 00*6; "mastercard":
    #: R = ATC || 00 00 || UN.
    session_key: Literal["none", "common", "mastercard"]
    #: ISO 9797-1 padding method.
    padding: Literal[1, 2]
    #: What follows AIP || ATC: the whole IAD, or the CVR slice of it.
    card_data: Literal["iad", "cvr"]


#: Cryptogram methods by the name a profile gives in ``[cryptogram] method``.
METHODS: Mapping[str, CryptogramMethod] = {
    "visa-cvn10": CryptogramMethod(
        "Visa CVN 10: ICC master key (no session key), padding method 1, CVR",
        "A",
        "none",
        1,
        "cvr",
    ),
    "visa-cvn18": CryptogramMethod(
        "Visa CVN 18: EMV common session key, padding method 2, whole IAD",
        "B",
        "common",
        2,
        "iad",
    ),
    "mastercard-cvn16": CryptogramMethod(
        "Mastercard CVN 16: session key from ATC and UN, padding method 2, CVR",
        "A",
        "mastercard",
        2,
        "cvr",
    ),
    "mastercard-cvn20": CryptogramMethod(
        "Mastercard CVN 20: EMV common session key, padding method 2, CVR",
        "A",
        "common",
        2,
        "cvr",
    ),
    "emv-csk-iad": CryptogramMethod(
        "EMV common session key, padding method 2, whole IAD (common-core style)",
        "B",
        "common",
        2,
        "iad",
    ),
    "emv-csk-cvr": CryptogramMethod(
        "EMV common session key, padding method 2, CVR (common-core style)",
        "B",
        "common",
        2,
        "cvr",
    ),
}


def application_cryptogram(
    method: CryptogramMethod,
    master_key: bytes,
    *,
    terminal_data: Mapping[bytes, bytes],
    aip: bytes,
    atc: int,
    iad: bytes,
    cvr: slice = slice(0, 0),
) -> bytes:
    """The 8-byte ARQC/TC/AAC (the AC type does not change the computation).

    ``master_key`` is the ICC master key; ``terminal_data`` maps each tag of
    :data:`TERMINAL_DATA_TAGS` to its value as sent in the CDOL1 (or PDOL) data;
    ``cvr`` locates the CVR in ``iad`` for methods that MAC only the CVR.
    """
    atc_bytes = atc.to_bytes(2, "big")
    if method.session_key == "none":
        key = master_key
    elif method.session_key == "common":
        key = common_session_key(master_key, atc_bytes + bytes(6))
    else:
        key = common_session_key(master_key, atc_bytes + bytes(2) + terminal_data[b"\x9f\x37"])
    card_data = iad if method.card_data == "iad" else iad[cvr]
    message = b"".join(terminal_data[tag] for tag in TERMINAL_DATA_TAGS)
    return mac_iso9797_alg3(key, message + aip + atc_bytes + card_data, method.padding)
