"""The visa sim card's data (``sim:visa``), which no output, log or repr may show unless the
user opts in, and a finder for it in every form it could leak in. Shared by the leak tests
of every package (``pythonpath = ["tests"]`` in pyproject.toml makes it importable)."""

from __future__ import annotations

VISA_PAN = "4761739001010010"
VISA_NAME = "VISA ACQUIRER TEST/CARD 01"
VISA_TRACK2 = "4761739001010010D28122011010000000000F"
#: Its answer to READ RECORD SFI 1 record 1: Track 2 Equivalent Data (57), the Cardholder
#: Name (5F20) and Track 1 Discretionary Data (9F1F), then SW 9000.
VISA_RECORD = bytes.fromhex(
    "7041" + "5713" + VISA_TRACK2 + "5F201A" + VISA_NAME.encode().hex() + "9F1F0C" + "30" * 12
) + bytes.fromhex("9000")


def visa_data_in(text: str) -> list[str]:
    """The visa card's data found in ``text``: digits and hex (a hex dump, ``to_json``),
    text (the name), its hex, and a Python ``bytes`` repr's escapes."""
    forms = [
        VISA_PAN,
        VISA_NAME,
        VISA_TRACK2,
        VISA_NAME.encode().hex().upper(),
        repr(bytes.fromhex(VISA_PAN))[2:-1],
        repr(bytes.fromhex(VISA_TRACK2))[2:-1],
    ]
    return [form for form in forms if form in text]
