"""The Dutch translation is complete, compiled, and covers every text the code shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_the_admin_names_every_model_app_and_role_in_dutch() -> None:
    """Every model's verbose names, every app label and every role group read Dutch in the admin."""
    from django.apps import apps
    from django.utils import translation

    from preventicons.roles import ROLE_LABELS

    # Words that are the same in both languages.
    same = {"id", "dossier", "dossiers", "score", "scores", "Scores", "Dossiers", "status"}
    untranslated = []
    with translation.override("nl"):
        for config in apps.get_app_configs():
            shown = list(config.get_models()) and config.label not in ("admin", "contenttypes", "sessions")
            name = str(config.verbose_name)
            if shown and name not in same and name == _english(config.verbose_name):
                untranslated.append(f"app {config.label}: {config.verbose_name}")
            for model in config.get_models():
                if model._meta.app_label in ("contenttypes", "sessions", "admin"):
                    continue
                for model_name in (model._meta.verbose_name, model._meta.verbose_name_plural):
                    if str(model_name) not in same and str(model_name) == _english(model_name):
                        untranslated.append(f"model {model._meta.label}: {model_name}")
        for role, label in ROLE_LABELS.items():
            if str(label) == _english(label):
                untranslated.append(f"role {role.value}: {label}")

    assert untranslated == []


def _english(text: object) -> str:
    from django.utils import translation

    with translation.override("en"):
        return str(text)


def test_two_factor_and_django_still_write_the_texts_we_translate_with_je() -> None:
    """Our catalogue's "je" for two-factor's "u" texts works only while two-factor's msgids are the same."""
    import django
    import two_factor

    from preventicons.thirdparty_texts import DJANGO_ADMIN_PLURAL_TEXTS, TEXTS

    theirs: set[str] = set()
    for package in (
        Path(two_factor.__file__).parent,
        *(Path(django.__file__).parent / "contrib" / app for app in ("admin", "auth")),
    ):
        theirs |= msgids(
            (package / "locale" / "nl" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
        )
    ours = msgids(PO.read_text(encoding="utf-8"))
    # msgids() keeps the .po escapes; these texts hold double quotes.
    theirs = {text.replace('\\"', '"') for text in theirs}
    ours = {text.replace('\\"', '"') for text in ours}

    assert sorted(set(TEXTS) - theirs) == [], (
        "a text changed upstream: update preventicons/thirdparty_texts.py"
    )
    assert sorted(set(TEXTS) - ours) == []
    dutch = _dutch_of(TEXTS) + " ".join(_plural_in_dutch(text) for text in DJANGO_ADMIN_PLURAL_TEXTS)
    assert not re.search(r"\b(u|uw|U|Uw)\b", dutch), dutch


def _plural_in_dutch(text: Any) -> str:
    from django.utils import translation

    with translation.override("nl"):
        return " ".join(str(text % {"min_length": n}) for n in (1, 8))


def _dutch_of(texts: tuple[str, ...]) -> str:
    from django.utils import translation

    with translation.override("nl"):
        return " ".join(translation.gettext(text) for text in texts)
