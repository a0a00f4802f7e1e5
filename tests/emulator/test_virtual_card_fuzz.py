"""No input makes the virtual card raise or fail internally: every answer is a response
APDU (at least SW1 SW2), and never 6F00, which the card keeps for internal faults."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from virtual_terminal import dol_data

from contactless.emulator import CardOptions, VirtualCard, list_profiles, load_profile
from contactless.tlv.dol import dol_length, parse_dol

PROFILES = {name: load_profile(name) for name in list_profiles()}
INTERNAL_FAULT = b"\x6f\x00"

# Headers the card knows, so random data reaches the command handlers, not just 6D00/6E00.
known_headers = st.sampled_from(
    [b"\x00\xa4\x04\x00", b"\x00\xa4\x04\x02", b"\x80\xa8\x00\x00", b"\x00\xb2\x01\x0c",
     b"\x00\xb2\x01\x14", b"\x80\xca\x9f\x36", b"\x80\xae\x80\x00", b"\x80\xae\x40\x00",
     b"\x00\x20\x00\x80", b"\x00\xc0\x00\x00"]
)  # fmt: skip
structured = st.builds(
    lambda header, data, le: header + (bytes((len(data),)) + data if data else b"") + le,
    known_headers,
    st.binary(max_size=64),
    st.sampled_from([b"", b"\x00", b"\x10"]),
)
apdus = st.one_of(st.binary(max_size=300), structured)
options = st.builds(
    CardOptions,
    t0=st.booleans(),
    corrupt_ins=st.frozensets(st.sampled_from([0xA4, 0xA8, 0xB2, 0xAE]), max_size=2),
    pin_tries=st.none() | st.integers(0, 15),
    expired=st.booleans(),
)


def check(response: bytes) -> None:
    assert isinstance(response, bytes) and len(response) >= 2
    assert response[-2:] != INTERNAL_FAULT


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(PROFILES)), apdu=apdus)
def test_any_single_apdu_gets_a_response(name: str, apdu: bytes) -> None:
    check(VirtualCard(PROFILES[name]).process(apdu))


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(PROFILES)),
    sequence=st.lists(apdus, max_size=12),
    opts=options,
    draw=st.data(),
)
def test_any_sequence_after_a_good_start_gets_responses(
    name: str, sequence: list[bytes], opts: CardOptions, draw: st.DataObject
) -> None:
    card = VirtualCard(PROFILES[name], options=opts)
    app = PROFILES[name].applications[0]
    # Start like a terminal (SELECT, GPO, and a GENERATE AC with random CDOL1 data of the
    # right length) so that later APDUs meet a transaction in every state.
    check(card.process(b"\x00\xa4\x04\x00" + bytes((len(app.aid),)) + app.aid + b"\x00"))
    template = b"\x83" + bytes((len(dol_data(app.pdol or b"")),)) + dol_data(app.pdol or b"")
    check(card.process(b"\x80\xa8\x00\x00" + bytes((len(template),)) + template + b"\x00"))
    if app.cdol1 and draw.draw(st.booleans()):
        p1 = draw.draw(st.sampled_from([0x00, 0x40, 0x80, 0x90]))
        cdol = draw.draw(
            st.binary(
                min_size=dol_length(parse_dol(app.cdol1)), max_size=dol_length(parse_dol(app.cdol1))
            )
        )
        check(card.process(bytes((0x80, 0xAE, p1, 0x00, len(cdol))) + cdol + b"\x00"))
    for apdu in sequence:
        check(card.process(apdu))
    card.reset()
    check(card.process(b"\x00\xa4\x04\x00\x0e2PAY.SYS.DDF01\x00"))
