"""`contactless readers [--json]`: lists every backend's readers, never crashes."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from contactless.cli import cli
from contactless.emulator.profiles import list_profiles


def test_readers_json_lists_sim_profiles_and_every_backend() -> None:
    result = CliRunner().invoke(cli, ["readers", "--json"])
    assert result.exit_code == 0, result.output
    readers = json.loads(result.output)["readers"]
    by_uri = {entry["uri"]: entry for entry in readers}
    for name in list_profiles():
        entry = by_uri[f"sim:{name}"]
        assert entry["available"] is True and entry["card_present"] is True
        assert entry["backend"] == "sim"
    # Backends that are not usable here still appear, with the reason.
    assert {"pcsc", "nfc", "replay", "sim"} <= {entry["backend"] for entry in readers}
    for entry in readers:
        assert set(entry) == {"uri", "name", "card_present", "backend", "detail", "available"}
        if not entry["available"]:
            assert entry["detail"]


def test_readers_table_shows_the_uris() -> None:
    result = CliRunner().invoke(cli, ["readers"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "sim:visa" in result.output
    assert "URI" in result.output


def test_readers_rejects_a_bad_timeout() -> None:
    result = CliRunner().invoke(cli, ["readers", "--timeout", "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_the_command_the_help_suggests_reads_a_listed_reader() -> None:
    help_text = " ".join(CliRunner().invoke(cli, ["readers", "--help"]).output.split())
    suggested = re.search(r"`contactless (read [^`]*URI)`", help_text)
    assert suggested is not None, help_text
    argv = suggested.group(1).replace("URI", "sim:visa").split()
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert "visa" in result.output.lower()
