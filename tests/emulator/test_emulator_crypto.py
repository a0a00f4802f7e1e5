"""The card's cryptography against published known answers.

- DES and triple DES: FIPS 81 (ECB example), the classic worked example of FIPS 46
  (key 133457799BBCDFF1), and the NIST SP 800-67 Rev. 1 TDEA example;
- EMV key derivation, session keys, ISO 9797-1 MAC algorithm 3 and a whole Visa CVN 18
  ARQC: the known answers published in pyemv's documentation (EMV Book 2 Annex A1);
- when installed, ``cryptography`` (DES) and ``pyemv`` (every cryptogram method) serve as
  independent implementations for randomised differential checks.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactless.emulator.crypto import (
    METHODS,
    TERMINAL_DATA_TAGS,
    adjust_parity,
    application_cryptogram,
    common_session_key,
    des_decrypt,
    des_encrypt,
    icc_master_key,
    mac_iso9797_alg3,
    pad_iso9797,
    tdes_encrypt,
)

H = bytes.fromhex


def test_des_fips46_worked_example() -> None:
    key, plain, cipher = H("133457799BBCDFF1"), H("0123456789ABCDEF"), H("85E813540F0AB405")
    assert des_encrypt(key, plain) == cipher
    assert des_decrypt(key, cipher) == plain


def test_des_fips81_ecb_example() -> None:
    key = H("0123456789ABCDEF")
    plain = b"Now is the time for all "
    cipher = b"".join(des_encrypt(key, plain[i : i + 8]) for i in range(0, 24, 8))
    assert cipher == H("3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53")


def test_tdes_sp800_67_example() -> None:
    key = H("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123")
    cipher = tdes_encrypt(key, b"The qufck brown fox jump")
    assert cipher == H("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900")


def test_two_key_tdes_is_k1_k2_k1() -> None:
    k1, k2 = H("0123456789ABCDEF"), H("FEDCBA9876543210")
    block = H("1122334455667788")
    assert tdes_encrypt(k1 + k2, block) == tdes_encrypt(k1 + k2 + k1, block)
    assert tdes_encrypt(k1 + k1, block) == des_encrypt(k1, block)  # degenerates to DES


def test_parity_and_padding() -> None:
    assert adjust_parity(H("00FF0102")) == H("01FE0102")
    assert all(bin(b).count("1") % 2 for b in adjust_parity(bytes(range(256))))
    assert pad_iso9797(H("01"), 1) == H("0100000000000000")
    assert pad_iso9797(H("0102030405060708"), 1) == H("0102030405060708")
    assert pad_iso9797(b"", 1) == bytes(8)
    assert pad_iso9797(H("0102030405060708"), 2) == H("0102030405060708 8000000000000000")
    assert pad_iso9797(b"", 2) == H("8000000000000000")
    with pytest.raises(ValueError):
        pad_iso9797(b"", 3)


def test_icc_master_key_options_a_and_b() -> None:
    imk = H("0123456789ABCDEFFEDCBA9876543210")
    assert icc_master_key(imk, "12345678901234567", "01", "A") == H(
        "73AD54688CEF2934B0979857E3C719F1"
    )
    assert icc_master_key(imk, "12345678901234567", "01", "B") == H(
        "AD406D7F6D7570916D75E5DCAB8CF737"
    )
    assert icc_master_key(imk, "99012345678901234", "45", "A") == H(
        "67F8292358083E5EA7AB7FDA58D53B6B"
    )
    # Up to 16 digits option B is option A.
    assert icc_master_key(imk, "4761739001010010", "01", "B") == icc_master_key(
        imk, "4761739001010010", "01", "A"
    )


def test_common_session_key() -> None:
    mk = H("0123456789ABCDEFFEDCBA9876543210")
    assert common_session_key(mk, H("001C000000000000")) == H("E9FB384AF807B940FEDCEA613461B0C4")
    with pytest.raises(ValueError):
        common_session_key(mk, H("001C"))


def test_mac_algorithm_3_over_book2_data() -> None:
    # 9F02, 9F03, 9F1A, 95, 5F2A, 9A, 9C, 9F37, 82, 9F36
    data = H("000000002000 000000000000 0124 0000008000 0124 110309 00 3804823E 5800 0001")
    assert mac_iso9797_alg3(H("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB"), data) == H("3B76CF10FECD8789")


def test_visa_cvn18_arqc_known_answer() -> None:
    """Issuer master key, PAN and transaction data in, ARQC out (pyemv's published example)."""
    master_key = icc_master_key(H("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "1234567890123456", "00")
    terminal = dict(
        zip(
            TERMINAL_DATA_TAGS,
            map(H, ["000000009999", "000000000000", "0840", "8000048000", "0840", "991231",
                    "01", "52BF4585"]),
            strict=True,
        )
    )  # fmt: skip
    arqc = application_cryptogram(
        METHODS["visa-cvn18"],
        master_key,
        terminal_data=terminal,
        aip=H("1800"),
        atc=0x0FFF,
        iad=H("06011203A0B800"),
    )
    assert arqc == H("769577B5ABE9FE62")


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        des_encrypt(H("0123456789ABCDEF"), H("0102"))
    with pytest.raises(ValueError):
        tdes_encrypt(H("0123456789ABCDEF"), bytes(8))
    with pytest.raises(ValueError):
        mac_iso9797_alg3(H("0123456789ABCDEF"), b"")


# --- differential checks against independent implementations -----------------------------

blocks = st.binary(min_size=8, max_size=8)


@settings(max_examples=60, deadline=None)
@given(key=blocks, block=blocks)
def test_des_matches_cryptography(key: bytes, block: bytes) -> None:
    algorithms = pytest.importorskip("cryptography.hazmat.decrepit.ciphers.algorithms")
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    # Triple DES with K1 = K2 = K3 is single DES.
    encryptor = Cipher(algorithms.TripleDES(key * 3), modes.ECB()).encryptor()
    assert des_encrypt(key, block) == encryptor.update(block) + encryptor.finalize()
    assert des_decrypt(key, des_encrypt(key, block)) == block


terminal_values = st.tuples(
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=2, max_size=2),
    st.binary(min_size=5, max_size=5),
    st.binary(min_size=2, max_size=2),
    st.binary(min_size=3, max_size=3),
    st.binary(min_size=1, max_size=1),
    st.binary(min_size=4, max_size=4),
)


@settings(max_examples=25, deadline=None)
@given(
    imk=st.binary(min_size=16, max_size=16),
    pan=st.from_regex(r"[0-9]{12,19}", fullmatch=True),
    values=terminal_values,
    aip=st.binary(min_size=2, max_size=2),
    atc=st.integers(0, 0xFFFF),
    method=st.sampled_from(
        ["visa-cvn10", "visa-cvn18", "mastercard-cvn16", "mastercard-cvn20", "emv-csk-iad",
         "emv-csk-cvr"]
    ),
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:.*TripleDES")  # pyemv's use of cryptography, not ours
def test_cryptograms_match_pyemv(
    imk: bytes,
    pan: str,
    values: tuple[bytes, ...],
    aip: bytes,
    atc: int,
    method: str,
) -> None:
    cvn = pytest.importorskip("pyemv.cvn")
    if method == "emv-csk-cvr":
        pan = pan[:16]  # option B = option A (as in Mastercard CVN 20) up to 16 digits
    terminal = dict(zip(TERMINAL_DATA_TAGS, values, strict=True))
    atc_bytes = atc.to_bytes(2, "big")
    args = dict(zip(["tag_9f02", "tag_9f03", "tag_9f1a", "tag_95", "tag_5f2a", "tag_9a",
                     "tag_9c", "tag_9f37"], values, strict=True))  # fmt: skip
    args |= {"tag_82": aip, "tag_9f36": atc_bytes}
    if method == "visa-cvn10":
        iad, cvr = H("06010A03A0B800"), slice(3, 7)
        reference = cvn.VisaCVN10(imk, imk, imk, pan, "01").generate_ac(**args, cvr=iad[cvr])
    elif method in ("visa-cvn18", "emv-csk-iad"):
        iad, cvr = H("06011203A0B800"), slice(0, 0)
        reference = cvn.VisaCVN18(imk, imk, imk, pan, "01").generate_ac(**args, tag_9f10=iad)
    else:
        iad, cvr = H("0110A00000000000000000000000000000FF"), slice(2, 8)
        cls = cvn.MasterCardCVN16 if method == "mastercard-cvn16" else cvn.MasterCardCVN20
        if method == "emv-csk-cvr":
            iad, cvr = H("0FA501A000000000000000000000000000"), slice(3, 8)
        reference = cls(imk, imk, imk, pan, "01").generate_ac(**args, cvr=iad[cvr])
    chosen = METHODS[method]
    master_key = icc_master_key(imk, pan, "01", chosen.master_key_derivation)
    ours = application_cryptogram(
        chosen, master_key, terminal_data=terminal, aip=aip, atc=atc, iad=iad, cvr=cvr
    )
    assert ours == reference
