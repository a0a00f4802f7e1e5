"""Messages in English and Simplified Chinese, from ``messages/<lang>.toml``.

Every word the self-test shows a technician comes from a catalog: outcome messages,
remedies, category and check names, report labels. Messages are ``str.format``
templates whose fields are values measured by the checks (numbers, versions,
identifiers), so a translation never has to deal with English fragments.

The default language follows the locale, as POSIX orders it: the first of ``LC_ALL``,
``LC_MESSAGES`` and ``LANG`` that is set decides; ``zh*`` gives Chinese, anything else
English.
"""

from __future__ import annotations

import functools
import os
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from ..errors import ConfigError

__all__ = ["LANGUAGES", "Catalog", "language_from_environment", "load_catalog"]

LANGUAGES: tuple[str, ...] = ("en", "zh")

#: The catalog sections and what each holds.
SECTIONS: tuple[str, ...] = ("labels", "status", "categories", "checks", "messages", "remedies")


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """``"zh"`` when the locale is Chinese (LC_ALL, else LC_MESSAGES, else LANG), else
    ``"en"``."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


class _Missing(dict[str, str]):
    """Format values: a field the catalog uses but the check did not give shows as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def fields_of(template: str) -> set[str]:
    """The ``{field}`` names used in ``template``."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Catalog:
    """One language's texts."""

    language: str
    sections: Mapping[str, Mapping[str, str]]

    def _text(self, section: str, key: str) -> str:
        texts = self.sections[section]
        if key in texts:
            return texts[key]
        # A text missing from a catalog is a bug the tests catch; in the field, show the id
        # rather than crash in the middle of a report.
        return key

    def label(self, key: str, **values: object) -> str:
        """A report label (``labels`` section), formatted with ``values``."""
        return self._text("labels", key).format_map(
            _Missing({k: str(v) for k, v in values.items()})
        )

    def status(self, status: str) -> str:
        """The word for a status (pass, warn, fail, skip)."""
        return self._text("status", status)

    def category(self, category: str) -> str:
        """The name of a fault category."""
        return self._text("categories", category)

    def check(self, check_id: str) -> str:
        """The title of a check."""
        return self._text("checks", check_id)

    def message(self, outcome: str, params: Mapping[str, str]) -> str:
        """The message of an outcome, with its values filled in."""
        return self._text("messages", outcome).format_map(_Missing(params))

    def remedy(self, remedy: str) -> str:
        """The text of a remedy."""
        return self._text("remedies", remedy)


@functools.cache
def load_catalog(language: str) -> Catalog:
    """The catalog of ``language`` (``"en"`` or ``"zh"``)."""
    if language not in LANGUAGES:
        raise ConfigError(
            f"no messages in language {language!r}", remedy=f"use one of {', '.join(LANGUAGES)}"
        )
    source = resources.files(__package__).joinpath("messages", f"{language}.toml")
    document = tomllib.loads(source.read_text("utf-8"))
    sections: dict[str, Mapping[str, str]] = {}
    for section in SECTIONS:
        table = document.get(section)
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(f"messages/{language}.toml: [{section}] must be a table of texts")
        sections[section] = MappingProxyType(dict(table))
    return Catalog(language, MappingProxyType(sections))
