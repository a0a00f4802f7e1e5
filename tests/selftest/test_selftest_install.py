"""The software checks against a real, non-editable installation in a throwaway directory.

The package's files are laid out in a site directory with a dist-info and a RECORD of
their hashes (as pip installs a wheel), and the self-test runs in a fresh interpreter
that imports contactless from there (PYTHONPATH). Then the installation is damaged the
ways an interrupted upgrade damages it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from selftest_support import install_package_copy, run_installed, write


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed copy of the package under test, with its RECORD."""
    site = tmp_path_factory.mktemp("pristine") / "site"
    install_package_copy(site)
    return site


@pytest.fixture
def site(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the installation that this test may damage."""
    copy = tmp_path / "site"
    shutil.copytree(pristine, copy)
    return copy


def selftest(site: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    return run_installed(site, *args, env=env)


def checks(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["id"]: check for check in document["checks"]}


def test_an_intact_installation_is_verified_file_by_file(site: Path) -> None:
    status, document = selftest(site)
    integrity = checks(document)["software.integrity"]
    assert integrity["outcome"] == "software.record_ok", integrity
    assert integrity["data"]["location"] == str(site)  # the copy, not the source tree
    assert integrity["data"]["files_checked"] > 50
    assert status == 0, document["diagnosis"]


def test_a_file_changed_after_installation(site: Path) -> None:
    with (site / "contactless/sw.py").open("a") as handle:
        handle.write("# half of the new version\n")
    status, document = selftest(site)
    integrity = checks(document)["software.integrity"]
    assert integrity["outcome"] == "software.record_mismatch"
    assert integrity["data"]["changed"] == ["contactless/sw.py"]
    assert status == 2
    assert document["diagnosis"][0]["category"] == "upgrade_incomplete"


def test_a_file_the_upgrade_deleted(site: Path) -> None:
    (site / "contactless/emv/flow.py").unlink()
    # emv.flow is the EMV flow itself: the self-test must still say what is wrong.
    status, document = selftest(site)
    assert checks(document)["software.integrity"]["data"]["missing"] == ["contactless/emv/flow.py"]
    assert document["diagnosis"][0]["category"] == "upgrade_incomplete"
    # The checks that need the EMV code could not run, but a fault was found: exit 2.
    assert set(document["incomplete"]) == {"config.integrity", "emv.transaction"}
    assert not document["complete"]
    assert status == 2


def test_the_accelerator_required_but_not_in_use(site: Path) -> None:
    config = write(site.parent / "terminal.toml", '[selftest]\naccelerator = "required"\n')
    status, document = selftest(site, "--config", str(config), env={"CONTACTLESS_PUREPYTHON": "1"})
    assert checks(document)["software.accelerator"]["outcome"] == "software.accelerator_missing"
    assert document["diagnosis"][0]["category"] == "upgrade_incomplete"
    assert status == 2


def test_a_data_file_the_upgrade_deleted(site: Path) -> None:
    (site / "contactless/tlv/tags.csv").unlink()
    # The tag dictionary is read when the EMV code first needs it, which is no reason for
    # the self-test to stop: the integrity check names the file, the checks that need it
    # could not run.
    status, document = selftest(site)
    integrity = checks(document)["software.integrity"]
    assert integrity["data"]["missing"] == ["contactless/tlv/tags.csv"]
    assert document["diagnosis"][0]["category"] == "upgrade_incomplete"
    assert document["incomplete"]
    for check_id in document["incomplete"]:
        assert checks(document)[check_id]["outcome"] == "check.crashed"
    assert "tags.csv" in json.dumps([checks(document)[c]["data"] for c in document["incomplete"]])
    assert status == 2
