"""The message catalogs and the outcome table fit together: every outcome a check can
report has a status, a message in both languages with the same fields, and a remedy that
exists; the Chinese catalog has no English left in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from selftest_support import english_words

import contactless.selftest.checks as checks_package
from contactless.errors import ConfigError
from contactless.selftest import CATEGORIES, check_ids, language_from_environment, load_catalog
from contactless.selftest.i18n import SECTIONS, fields_of
from contactless.selftest.rules import _category, _outcome, load_rules

CHECKS_DIR = Path(checks_package.__file__).parent


OUTCOME_ID = re.compile(r"^(software|baseline|config|service|reader|card|link|emv|host)\.[a-z_]+$")


def outcome_ids_in_source() -> set[str]:
    """Every string in the checks' source that looks like an outcome id: the first
    arguments of Outcome(...) and the outcome tables (NFC_OUTCOMES, OPEN_ERRORS...), but
    not the field names of Difference(...) nor parts of f-strings."""
    found: set[str] = set()
    for path in CHECKS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        skip: set[int] = set()
        for node in ast.walk(tree):
            is_difference = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("Difference", "Check")
            )
            if is_difference or isinstance(node, ast.JoinedStr):
                skip.update(id(inner) for inner in ast.walk(node))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and id(node) not in skip
                and isinstance(node.value, str)
                and OUTCOME_ID.match(node.value)
            ):
                found.add(node.value)
    return found


def test_the_two_catalogs_have_the_same_keys_and_fields() -> None:
    english, chinese = load_catalog("en"), load_catalog("zh")
    for section in SECTIONS:
        assert set(english.sections[section]) == set(chinese.sections[section]), section
        for key, template in english.sections[section].items():
            assert fields_of(template) == fields_of(chinese.sections[section][key]), key


def test_every_outcome_has_a_message_and_every_remedy_a_text() -> None:
    rules = load_rules()
    catalog = load_catalog("en")
    assert set(rules.outcomes) == set(catalog.sections["messages"])
    remedies = {rule.remedy for rule in rules.outcomes.values() if rule.remedy}
    for category in rules.categories.values():
        remedies.update(category.remedies)
    remedies.update({"remedy.run_test_transaction", "remedy.contact_acquirer"})
    assert remedies == set(catalog.sections["remedies"])


def test_every_outcome_a_check_reports_is_in_the_table() -> None:
    rules = load_rules()
    used = outcome_ids_in_source()
    assert len(used) > 80
    known = set(rules.outcomes) | set(check_ids())  # a check id is a default argument once
    assert sorted(used - known) == []


def test_every_check_and_category_has_a_name() -> None:
    for language in ("en", "zh"):
        catalog = load_catalog(language)
        assert set(catalog.sections["checks"]) == set(check_ids())
        assert set(catalog.sections["categories"]) == set(CATEGORIES)
        assert set(catalog.sections["status"]) == {"pass", "warn", "fail", "skip", "error"}


def test_chinese_texts_have_no_english_words() -> None:
    catalog = load_catalog("zh")
    leftovers = {}
    for section in SECTIONS:
        for key, template in catalog.sections[section].items():
            literal = template
            for name in fields_of(template):
                literal = literal.replace("{" + name + "}", " ")
            words = english_words(literal)
            if words:
                leftovers[f"{section}.{key}"] = words
    assert leftovers == {}


def test_the_word_checker_does_catch_english() -> None:
    assert english_words("读卡器 not found") == ["not", "found"]
    assert english_words("固件 {v}".replace("{v}", "1.2.3"), {"v": "1.2.3"}) == []
    assert english_words("PIN 剩余 3 次，p95 12 ms") == []


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),  # LC_ALL wins
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_TW.UTF-8"}, "zh"),
        ({"LC_ALL": "zh_SG", "LC_MESSAGES": "en_GB"}, "zh"),
        ({"LC_ALL": "", "LANG": "zh_HK"}, "zh"),  # an empty variable does not count
        ({"LANG": "de_DE.UTF-8"}, "en"),
    ],
)
def test_the_default_language_follows_the_locale(environ: dict[str, str], language: str) -> None:
    assert language_from_environment(environ) == language


def test_an_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="en, zh"):
        load_catalog("fr")


def test_a_missing_field_renders_as_a_question_mark_not_a_crash() -> None:
    assert load_catalog("en").message("reader.not_found", {}) == "No reader found at ?."


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"status": "maybe"}, "status must be"),
        ({"status": "fail"}, "needs evidence weights"),
        ({"status": "pass", "weights": {"network": 0.5}}, "takes no weights"),
        ({"status": "fail", "weights": {"weather": 0.5}}, "unknown category"),
        ({"status": "fail", "weights": {"network": 1.5}}, "between 0 and 1"),
        ({"status": "fail", "weights": {"network": 0.5}, "remedy": "reboot"}, "remedy id"),
        ({"status": "fail", "weights": {"network": 0.5}, "why": "x"}, "unknown keys"),
    ],
)
def test_a_bad_outcome_row_is_refused(table: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _outcome("x.y", table)


def test_a_bad_category_row_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown category"):
        _category("weather", {"remedies": [], "confirm_settlement": False})
    with pytest.raises(ConfigError, match="confirm_settlement"):
        _category("network", {"remedies": ["remedy.check_network"]})


def test_an_outcome_points_at_its_heaviest_category() -> None:
    rules = load_rules()
    assert rules.outcomes["link.intermittent"].category == "interference"
    assert rules.outcomes["service.pcscd_down"].category == "upgrade_incomplete"
    assert rules.outcomes["reader.ok"].category is None
