"""Settings: every variable documented, half a configuration refused, production passes check --deploy."""

from __future__ import annotations

import json
import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import preventicons.settings as settings_module
from preventicons.keys import generate_key_document

BASE_DIR = Path(settings_module.__file__).resolve().parent.parent
SETTINGS_PATH = Path(settings_module.__file__)
ENV_EXAMPLE = BASE_DIR / ".env.example"

# env.str("NAME", ...), env.bool(...), env("NAME") and friends; the name may sit on the next line.
ENV_READ = re.compile(
    r"\benv(?:\.(?:str|bool|int|float|decimal|list|tuple|dict|json|url|path|bytes))?\(\s*([^,)\s]+)"
)
DOCUMENTED = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
DATABASE_URL_VARS = ("DATABASE_URL", "NOTES_DATABASE_URL", "CASEFILES_DATABASE_URL")


def settings_reads() -> tuple[set[str], list[str]]:
    """Names the settings read literally, and the first arguments of reads whose name is computed."""
    names: set[str] = set()
    computed: list[str] = []
    for argument in ENV_READ.findall(SETTINGS_PATH.read_text(encoding="utf-8")):
        literal = re.fullmatch(r"[\"']([A-Za-z0-9_]+)[\"']", argument)
        if literal:
            names.add(literal.group(1))
        else:
            computed.append(argument)
    return names, computed


def all_variables_read() -> set[str]:
    names, _ = settings_reads()
    return names | set(settings_module._DATABASE_ENV.values())


def test_the_scan_finds_the_settings_reads() -> None:
    names, computed = settings_reads()
    # If this fails the regular expression no longer matches how settings.py reads the environment.
    assert {"PREVENTICONS_ENV", "DJANGO_SECRET_KEY", "PREVENTICONS_KEY_FILE", "EMAIL_BACKEND"} <= names
    # The one read with a computed name is the loop over _DATABASE_ENV; any other cannot be checked here.
    assert len(computed) == 1, f"env reads with a computed name: {computed}; read them by a literal name"
    assert set(settings_module._DATABASE_ENV.values()) == set(DATABASE_URL_VARS)


def test_every_environment_variable_the_settings_read_is_documented() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    documented = set(DOCUMENTED.findall(text))
    missing = sorted(all_variables_read() - documented)
    assert not missing, f"add these to .env.example with a comment and a safe example: {missing}"


def test_every_documented_settings_variable_has_an_explanation_above_it() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    wanted = all_variables_read()
    unexplained = [
        match.group(1)
        for number, line in enumerate(lines)
        if (match := DOCUMENTED.match(line)) and match.group(1) in wanted
        if number == 0 or not lines[number - 1].startswith("# ")
    ]
    assert not unexplained, f"put a '# ' comment line directly above: {unexplained}"


def test_the_example_holds_no_real_secret() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "BEGIN PRIVATE KEY" not in text
    # The key set example is a shape only: no 32-byte base64 key sits in it.
    assert not re.search(r"[A-Za-z0-9+/]{43}=", text)


# --- Refusals, by executing settings.py afresh under a given environment ---------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment in which none of the settings' variables is set, and var/ is a temporary folder."""
    for name in all_variables_read():
        monkeypatch.delenv(name, raising=False)
    # Set but empty reads as unset for these, and keeps a developer's .env from filling them in.
    for name in DATABASE_URL_VARS:
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("PREVENTICONS_VAR_DIR", str(tmp_path))
    return monkeypatch


def load_settings() -> dict:
    return runpy.run_path(str(SETTINGS_PATH), run_name="preventicons.settings_under_test")


def test_the_embedded_default_needs_no_configuration(clean_environment: pytest.MonkeyPatch) -> None:
    loaded = load_settings()
    assert {alias: db["ENGINE"] for alias, db in loaded["DATABASES"].items()} == {
        "default": "django.db.backends.sqlite3",
        "notes": "django.db.backends.sqlite3",
        "casefiles": "django.db.backends.sqlite3",
    }
    assert loaded["DEBUG"] is True


def test_development_uses_the_mailbox_only_while_debug_is_on(clean_environment: pytest.MonkeyPatch) -> None:
    loaded = load_settings()
    assert loaded["EMAIL_BACKEND"] == "preventicons.devmailbox.MailboxEmailBackend"
    assert loaded["SMS_GATEWAY"] == "preventicons.devmailbox.MailboxSmsGateway"

    clean_environment.setenv("DJANGO_DEBUG", "false")
    loaded = load_settings()
    assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert loaded["SMS_GATEWAY"] == "preventicons.gateways.ConsoleSmsGateway"


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (["DATABASE_URL"], "NOTES_DATABASE_URL, CASEFILES_DATABASE_URL"),
        (["NOTES_DATABASE_URL"], "DATABASE_URL, CASEFILES_DATABASE_URL"),
        (["DATABASE_URL", "CASEFILES_DATABASE_URL"], "NOTES_DATABASE_URL"),
        (["DATABASE_URL", "NOTES_DATABASE_URL"], "CASEFILES_DATABASE_URL"),
    ],
)
def test_one_or_two_database_urls_are_refused_naming_the_missing_ones(
    clean_environment: pytest.MonkeyPatch, given: list[str], missing: str
) -> None:
    for name in given:
        clean_environment.setenv(name, f"postgres://preventicons@127.0.0.1:5432/{name.lower()}")
    with pytest.raises(ImproperlyConfigured, match=f"database URLs or none; missing: {missing}$"):
        load_settings()


def test_a_database_url_that_is_not_postgres_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    for name in DATABASE_URL_VARS:
        clean_environment.setenv(name, f"postgres://preventicons@127.0.0.1:5432/{name.lower()}")
    clean_environment.setenv("NOTES_DATABASE_URL", "mysql://preventicons@127.0.0.1:3306/notes")
    with pytest.raises(ImproperlyConfigured, match="NOTES_DATABASE_URL must be a postgres:// URL"):
        load_settings()


def production_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREVENTICONS_ENV", "production")
    monkeypatch.setenv("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "preventicons.example.nl")
    monkeypatch.setenv("PREVENTICONS_SITE_URL", "https://preventicons.example.nl")
    for name in DATABASE_URL_VARS:
        monkeypatch.setenv(name, f"postgres://preventicons@127.0.0.1:5432/{name.lower()}")


def test_production_with_debug_on_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    production_environment(clean_environment)
    clean_environment.setenv("DJANGO_DEBUG", "true")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG must be off in production"):
        load_settings()


def test_production_without_database_urls_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    production_environment(clean_environment)
    for name in DATABASE_URL_VARS:
        clean_environment.setenv(name, "")
    with pytest.raises(ImproperlyConfigured, match="production needs DATABASE_URL"):
        load_settings()


def test_production_without_a_secret_key_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    production_environment(clean_environment)
    clean_environment.delenv("DJANGO_SECRET_KEY")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        load_settings()


def test_production_without_a_site_url_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    # A default would put http://127.0.0.1:8000 into every invitation link sent to employees.
    production_environment(clean_environment)
    clean_environment.delenv("PREVENTICONS_SITE_URL")
    with pytest.raises(ImproperlyConfigured, match="PREVENTICONS_SITE_URL"):
        load_settings()


def test_an_unknown_environment_name_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PREVENTICONS_ENV", "staging")
    with pytest.raises(ImproperlyConfigured, match="PREVENTICONS_ENV must be"):
        load_settings()


def test_a_negative_proxy_count_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PREVENTICONS_PROXY_COUNT", "-1")
    with pytest.raises(ImproperlyConfigured, match="PREVENTICONS_PROXY_COUNT"):
        load_settings()


# --- The real thing: Django's deployment checklist on the production settings --------------------


def postgres_urls() -> dict[str, str]:
    """The suite's PostgreSQL URLs (check --deploy does not connect, so a stand-in serves without them)."""
    urls = {}
    for name in DATABASE_URL_VARS:
        url = os.environ.get(name, "")
        urls[name] = url if url.startswith("postgres") else f"postgres://127.0.0.1:5432/{name.lower()}"
    return urls


def test_production_settings_pass_check_deploy_with_no_warning(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if name not in all_variables_read()}
    # The browser tests set this for Playwright's event loop; a deployment never has it.
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    environment.update(
        postgres_urls(),
        DJANGO_SETTINGS_MODULE="preventicons.settings",
        PREVENTICONS_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="preventicons.example.nl",
        PREVENTICONS_SITE_URL="https://preventicons.example.nl",
        PREVENTICONS_KEYS=json.dumps(generate_key_document()),
        PREVENTICONS_VAR_DIR=str(tmp_path),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
