"""The Dutch translation is complete, compiled, and covers every text the code shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

PO = Path(settings.BASE_DIR) / "locale" / "nl" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCES = ("manage.py", "preventicons", "participants", "scores", "casefiles", "notary", "templates")

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs gettext's msgfmt")


def msgids(po_text: str) -> set[str]:
    """The msgids of a .po file (joined across continuation lines), without the header."""
    ids: set[str] = set()
    for block in re.findall(r'^msgid ((?:".*"\n)+)', po_text, flags=re.MULTILINE):
        text = "".join(re.findall(r'"(.*)"', block))
        if text:
            ids.add(text)
    return ids


def test_every_entry_is_translated_and_none_is_fuzzy() -> None:
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


def test_the_committed_catalogue_is_compiled_from_the_current_translation(tmp_path: Path) -> None:
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(compiled), str(PO)], check=True)

    assert compiled.read_bytes() == MO.read_bytes(), "run `make messages` and commit locale/"


def test_every_text_in_the_code_is_in_the_translation(tmp_path: Path) -> None:
    for name in SOURCES:
        source = Path(settings.BASE_DIR) / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "locale").mkdir()
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "preventicons.settings"}
    environment["PREVENTICONS_VAR_DIR"] = str(tmp_path / "var")
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "nl", "-v0"],
        cwd=tmp_path,
        env=environment,
        check=True,
        timeout=120,
    )
    fresh = msgids((tmp_path / "locale" / "nl" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))
    committed = msgids(PO.read_text(encoding="utf-8"))

    assert sorted(fresh - committed) == [], "new texts without a Dutch translation: run `make messages`"
