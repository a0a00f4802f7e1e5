"""The error tree: one root, builtin bases where callers expect them, messages with remedies."""

from __future__ import annotations

import inspect

import pytest

import contactless
from contactless import errors


def test_every_error_is_exported_and_under_the_root() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert len(classes) >= 19
    for cls in classes:
        assert issubclass(cls, contactless.ContactlessError), cls
        assert getattr(contactless, cls.__name__) is cls, f"{cls.__name__} not re-exported"


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.TransportTimeout, TimeoutError),
        (errors.BackendUnavailable, ImportError),
        (errors.PermissionDenied, PermissionError),
    ],
)
def test_builtin_bases(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, builtin)


def test_phase_and_blame_groups() -> None:
    for cls in (errors.ServiceUnavailable, errors.ReaderNotFound, errors.NoCard, errors.ReaderBusy):
        assert issubclass(cls, errors.OpenError)
    for cls in (errors.CardRemoved, errors.TransportTimeout, errors.TransportError):
        assert issubclass(cls, errors.ExchangeError)
    for cls in (errors.TlvError, errors.AtrError, errors.StatusWordError):
        assert issubclass(cls, errors.RemoteProtocolError)


def test_message_carries_remedy() -> None:
    error = errors.ServiceUnavailable("cannot reach pcscd")
    assert str(error).startswith("cannot reach pcscd (")
    assert "pcscd" in error.remedy
    custom = errors.ReaderNotFound("no reader named 'X'", remedy="plug it in")
    assert str(custom) == "no reader named 'X' (plug it in)"


def test_tlv_error_names_offset_and_tag() -> None:
    error = errors.TlvError("length is missing", offset=7, tag="9F38")
    assert (error.offset, error.tag, error.reason) == (7, "9F38", "length is missing")
    assert str(error) == "malformed TLV at offset 7, tag 9F38: length is missing"


def test_status_word_error() -> None:
    error = errors.StatusWordError(0x6A, 0x82, "file or application not found", command="SELECT")
    assert error.sw == 0x6A82
    assert str(error) == "card answered 6A82 to SELECT: file or application not found"
