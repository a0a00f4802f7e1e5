"""``contactless.cli.main``: whatever escapes a command becomes one line and a documented
exit status, never a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from contactless import cli
from contactless.errors import NoCard


@click.command()
@click.argument("what")
def boom(what: str) -> None:
    """A command that fails the way a bug or a user would."""
    if what == "bug":
        raise ValueError("first line\nsecond line")
    if what == "empty":
        raise RuntimeError()
    if what == "library":
        raise NoCard("no card on sim:visa after 1 s")
    if what == "interrupt":
        raise KeyboardInterrupt
    click.echo("fine")


@pytest.fixture(autouse=True)
def _boom_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "boom", f"{__name__}:boom")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_an_unexpected_exception_is_one_line_and_status_70(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "boom", "bug")
    assert status == cli.EXIT_INTERNAL_ERROR == 70
    assert err.strip().splitlines() == [
        "internal error: ValueError: first line — please report this with `contactless --version`"
    ]
    assert "Traceback" not in err


def test_an_exception_without_a_message_still_names_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "boom", "empty")
    assert status == 70
    assert err.startswith("internal error: RuntimeError: (no message)")


def test_a_library_error_is_one_error_line_and_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "boom", "library")
    assert status == 2
    assert err.splitlines()[0].startswith("error: no card on sim:visa after 1 s")


def test_ctrl_c_exits_130_without_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "boom", "interrupt")
    assert status == 130
    assert out == ""
    assert "Aborted" not in err and "Traceback" not in err and err.strip() == ""


def test_success_usage_errors_and_version_keep_their_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "boom", "ok")[:2] == (0, "fine\n")
    status, _, err = run(capsys, "boom")
    assert status == 2 and "Missing argument" in err
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("contactless, version")


def test_help_documents_the_internal_error_status() -> None:
    result = CliRunner().invoke(cli.cli, ["--help"])
    assert "70" in result.output and "130" in result.output
