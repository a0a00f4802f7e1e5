"""Whatever the card answers, the flow ends with CardData or a ContactlessError, never a
crash or an endless loop."""

from __future__ import annotations

from emv_cards import config, mc_card, ok, visa_card
from hypothesis import given, settings
from hypothesis import strategies as st

from contactless.apdu import Command, Response
from contactless.emv.card import CardData
from contactless.emv.flow import read_flow
from contactless.errors import ContactlessError

# Enough for PPSE + 13 fallback SELECTs + GPOs + a long AFL; a flow asking for more loops.
MAX_COMMANDS = 2000


def _mutate(answer: Response, how: int, noise: bytes) -> Response:
    if how == 0:
        return answer
    if how == 1:  # truncated
        return Response(answer.data[: len(noise) % (len(answer.data) + 1)], 0x90, 0x00)
    if how == 2:  # random data
        return ok(noise)
    if how == 3:  # a byte flipped
        if not answer.data:
            return answer
        data = bytearray(answer.data)
        data[len(noise) % len(data)] ^= noise[0] if noise else 0xFF
        return Response(bytes(data), answer.sw1, answer.sw2)
    return Response(b"", noise[0] if noise else 0x6F, noise[-1] if noise else 0x00)  # any SW


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 4), st.binary(max_size=40)), min_size=1, max_size=20),
)
def test_any_answers_end_in_card_data_or_a_typed_error(
    mastercard: bool, transaction: bool, mutations: list[tuple[int, bytes]]
) -> None:
    card = mc_card() if mastercard else visa_card()
    if mastercard:
        card.answers["GENERATE AC"] = ok(bytes.fromhex("800B8000120102030405060708"))
    flow = read_flow(config(), transaction=transaction)
    sent = 0
    try:
        command: Command = next(flow)
        while True:
            sent += 1
            assert sent < MAX_COMMANDS, "the flow does not end"
            try:
                answer = card.exchange(command)
            except AssertionError:  # a command the script has no answer for
                answer = Response(b"", 0x6D, 0x00)
            how, noise = mutations[sent % len(mutations)]
            command = flow.send(_mutate(answer, how, noise))
    except StopIteration as done:
        assert isinstance(done.value, CardData)
    except ContactlessError as error:
        assert str(error)  # a message, never empty
