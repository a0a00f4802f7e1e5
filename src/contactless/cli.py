"""The ``contactless`` command.

Subcommands live in ``contactless.commands.<module>`` and are imported only when run (or
when ``--help`` lists them), so ``contactless tlv`` never pays for pyscard, nfcpy or the
EMV flow. Register a subcommand by adding one row to :data:`COMMANDS`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ._version import __version__
from .errors import ContactlessError

#: command name -> "module:attribute" of its click command (imported lazily).
COMMANDS: dict[str, str] = {
    "tlv": "contactless.commands.tlv:tlv",
    "readers": "contactless.commands.readers:readers",
    "read": "contactless.commands.read:read",
    "emulate": "contactless.commands.emulate:emulate",
    "record": "contactless.commands.record:record",
    "replay": "contactless.commands.replay:replay",
    "trace": "contactless.commands.trace:trace",
    "selftest": "contactless.commands.selftest:selftest",
    "baseline": "contactless.commands.baseline:baseline",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        module = __import__(module_name, fromlist=[attribute])
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="contactless")
def cli() -> None:
    """Drive contactless card readers, read EMV cards, and self-test POS terminals."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the CLI and turns any library error that escaped a command into
    one clear line and exit status 2 (never a traceback)."""
    try:
        return cli.main(args=argv, prog_name="contactless", standalone_mode=True)
    except ContactlessError as error:  # commands normally report their own errors
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
