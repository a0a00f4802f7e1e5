"""Click options shared by the commands that read a card (``read``, ``record``), so they
spell, bound and document them the same way."""

from __future__ import annotations

import click

reader_option = click.option(
    "--reader",
    "-r",
    "uri",
    required=True,
    envvar="CONTACTLESS_READER",
    metavar="URI",
    help="Reader URI: pcsc:, pcsc:0, nfc:usb, sim:visa, replay:trace.jsonl ... "
    "(or set CONTACTLESS_READER).",
)
amount_option = click.option(
    "--amount",
    type=click.IntRange(0, 999_999_999_999),
    help="Amount in minor units (150 = 1.50), overriding the terminal config.",
)
config_option = click.option(
    "--config",
    "config_path",
    metavar="FILE",
    help="Terminal settings (TOML); see docs/terminal-config.md.",
)
wait_option = click.option(
    "--wait",
    type=click.FloatRange(min=0.001, max=3600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a card.",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.001, max=600),
    default=5.0,
    show_default=True,
    help="Seconds allowed for each exchange with the card.",
)
