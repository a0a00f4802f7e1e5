"""Subcommands of the ``contactless`` CLI, one module each (see ``contactless.cli``)."""
