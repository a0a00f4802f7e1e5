"""The ``contactless`` command.

Subcommands live in ``contactless.commands.<module>`` and are imported only when run (or
when ``--help`` lists them), so ``contactless tlv`` never pays for pyscard, nfcpy or the
EMV flow. Register a subcommand by adding one row to :data:`COMMANDS`.

Exit statuses common to every subcommand (each command documents its own in its --help:
``read`` 1/2, ``tlv`` 2, ``selftest`` and ``replay`` 0-3, ``emulate`` 2):

====  ======================================================================================
2     a library error escaped a command (one ``error:`` line), or bad usage (click)
70    an internal error (a bug): one ``internal error:`` line, never a traceback
      (EX_SOFTWARE from BSD ``sysexits.h``, chosen to clash with no command's own status)
130   interrupted with Ctrl-C (128 + SIGINT), quietly
====  ======================================================================================
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

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


#: Exit status for an unexpected exception (a bug), from BSD sysexits.h.
EXIT_INTERNAL_ERROR = 70
#: Exit status after Ctrl-C, as shells report a process killed by SIGINT.
EXIT_INTERRUPTED = 128 + signal.SIGINT
#: Exit status for a library error that escaped a command.
EXIT_LIBRARY_ERROR = 2


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit status 70 means an internal error (please report it); 130 means Ctrl-C.",
)
@click.version_option(__version__, prog_name="contactless")
def cli() -> None:
    """Drive contactless card readers, read EMV cards, and self-test POS terminals."""


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: runs the CLI and exits with its status. Whatever escapes a command
    becomes one line on stderr, never a traceback: a library error exits with status 2, any
    other exception (a bug) with :data:`EXIT_INTERNAL_ERROR`, Ctrl-C quietly with 130."""
    try:
        # Not standalone: click would turn Ctrl-C into "Aborted!" and status 1.
        status = cli.main(args=argv, prog_name="contactless", standalone_mode=False)
    except click.exceptions.Abort as abort:
        if isinstance(abort.__context__, KeyboardInterrupt):
            sys.exit(EXIT_INTERRUPTED)
        click.echo("Aborted!", err=True)  # end of input at a prompt, as click says it
        sys.exit(1)
    except click.ClickException as usage:
        usage.show()
        sys.exit(usage.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except ContactlessError as error:  # commands normally report their own errors
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_LIBRARY_ERROR)
    except Exception as error:  # the last line of defence against tracebacks
        message = str(error).splitlines()[0] if str(error) else "(no message)"
        click.echo(
            f"internal error: {type(error).__name__}: {message} "
            "— please report this with `contactless --version`",
            err=True,
        )
        sys.exit(EXIT_INTERNAL_ERROR)
    # Non-standalone click returns the exit code of --help/--version (click.exceptions.Exit).
    sys.exit(status if isinstance(status, int) else 0)
