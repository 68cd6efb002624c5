"""The key set: a broken one stops the process at start-up, and no message ever shows key material."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from preventicons import keys
from preventicons.checks import check_key_file_permissions, check_keys

ROOT = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def restore_key_cache() -> Iterator[None]:
    """check_keys reloads the keys; the rest of the suite expects the inline test keys back."""
    yield
    keys.reset_key_cache()


def key_material(doc: dict[str, Any]) -> list[str]:
    """Every secret in a key document, as written and as raw bytes' hex, to search output for."""
    found: list[str] = []
    for value in doc.values():
        if isinstance(value, dict):
            found.extend(v for v in value.get("keys", {}).values() if isinstance(v, str))
        elif isinstance(value, str):
            found.append(value)
    hexes = [base64.b64decode(v).hex() for v in found if len(v) == 44]
    return [v for v in found + hexes if len(v) >= 16]


def assert_no_key_material(text: str, doc: dict[str, Any]) -> None:
    for secret in key_material(doc):
        assert secret not in text
        assert secret[:16] not in text


def run_check_with_key_file(path: Path) -> list[checks.CheckMessage]:
    with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
        return check_keys()


def write_raw(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def short_key(doc: dict[str, Any]) -> dict[str, Any]:
    kid = doc["field"]["active"]
    doc["field"]["keys"][kid] = base64.b64encode(os.urandom(16)).decode()
    return doc


def same_key_twice(doc: dict[str, Any]) -> dict[str, Any]:
    doc["notes_subject"] = doc["blind_index"]
    return doc


def active_not_in_keyring(doc: dict[str, Any]) -> dict[str, Any]:
    doc["pseudonym_link"]["active"] = "pl-gone"
    return doc


def active_is_a_list(doc: dict[str, Any]) -> dict[str, Any]:
    doc["field"]["active"] = [doc["field"]["active"]]
    return doc


def key_pasted_as_key_id(doc: dict[str, Any]) -> dict[str, Any]:
    doc["casefiles_link"]["keys"] = {doc["notes_subject"]: "cl-1"}
    return doc


def missing_purpose(doc: dict[str, Any]) -> dict[str, Any]:
    del doc["notary_signing"]
    return doc


def not_base64(doc: dict[str, Any]) -> dict[str, Any]:
    doc["blind_index"] = "not base64 at all!"
    return doc


BROKEN: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("wrong-length key", short_key, r"field\.keys\.[\w-]+: expected 32 bytes, found 16"),
    ("same key twice", same_key_twice, "blind_index and notes_subject hold the same key"),
    (
        "active not in keyring",
        active_not_in_keyring,
        "pseudonym_link: active key 'pl-gone' is not among its keys",
    ),
    ("active is a list", active_is_a_list, "field: active key .a malformed key id, not shown. is not among"),
    ("key pasted as key id", key_pasted_as_key_id, r"casefiles_link: \(a malformed key id, not shown\)"),
    ("missing purpose", missing_purpose, "notary_signing: expected a base64 string"),
    ("not base64", not_base64, "blind_index: not valid base64"),
    ("malformed JSON", lambda doc: json.dumps(doc)[:-5], r"is not valid JSON: .* at line 1"),
    ("not an object", lambda doc: "[1, 2]", "must hold a JSON object"),
    ("no format", lambda doc: {k: v for k, v in doc.items() if k != "format"}, 'must declare "format": 1'),
]


@pytest.mark.parametrize(
    ("breakage", "message"), [(b, m) for _, b, m in BROKEN], ids=[n for n, _, _ in BROKEN]
)
def test_broken_key_file_is_a_critical_startup_error_naming_the_problem(
    tmp_path: Path, breakage: Callable[[dict[str, Any]], Any], message: str
) -> None:
    doc = keys.generate_key_document()
    path = write_raw(tmp_path / "keys.json", breakage(json.loads(json.dumps(doc))))

    (error,) = run_check_with_key_file(path)

    assert error.level == checks.CRITICAL
    assert error.id == "preventicons.E001"
    assert error.msg.startswith("Encryption keys unusable: ")
    assert re.search(message, error.msg), error.msg
    assert_no_key_material(f"{error.msg} {error.hint}", doc)


def test_missing_key_file_is_a_critical_startup_error(tmp_path: Path) -> None:
    (error,) = run_check_with_key_file(tmp_path / "absent.json")
    assert error.level == checks.CRITICAL and error.id == "preventicons.E001"
    assert "absent.json does not exist" in error.msg
    assert "generate_keys" in error.msg


def test_no_keys_configured_is_a_critical_startup_error() -> None:
    with override_settings(PREVENTICONS_KEY_FILE="", PREVENTICONS_KEYS=""):
        (error,) = check_keys()
    assert error.level == checks.CRITICAL and "no keys configured" in error.msg


def test_broken_inline_keys_are_a_critical_startup_error() -> None:
    with override_settings(PREVENTICONS_KEYS="{not json"):
        (error,) = check_keys()
    assert error.id == "preventicons.E001" and "PREVENTICONS_KEYS is not valid JSON" in error.msg


def test_valid_key_file_passes_the_startup_check(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys.write_key_document(path, keys.generate_key_document())
    assert run_check_with_key_file(path) == []


def test_key_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys.write_key_document(path, keys.generate_key_document())
    with override_settings(PREVENTICONS_KEY_FILE=str(path), PREVENTICONS_KEYS=""):
        assert check_key_file_permissions() == []
        path.chmod(0o644)
        (warning,) = check_key_file_permissions()
    assert warning.id == "preventicons.W001" and "mode 644" in warning.msg


def manage_py_check(env_changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PREVENTICONS_KEYS", "PREVENTICONS_KEY_FILE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "preventicons.settings", **env_changes})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_process_with_a_wrong_length_key_refuses_to_start_without_showing_keys() -> None:
    doc = short_key(keys.generate_key_document())

    result = manage_py_check({"PREVENTICONS_KEYS": json.dumps(doc)})

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "preventicons.E001" in output and "expected 32 bytes, found 16" in output
    assert_no_key_material(output, doc)


@pytest.mark.integration
def test_process_with_a_missing_key_file_refuses_to_start(tmp_path: Path) -> None:
    result = manage_py_check({"PREVENTICONS_KEY_FILE": str(tmp_path / "absent.json")})

    assert result.returncode != 0
    assert "preventicons.E001" in result.stderr and "absent.json does not exist" in result.stderr


# --- Writing key files ----------------------------------------------------------------------------


def test_generate_keys_writes_a_valid_owner_only_file_without_printing_keys(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "keys.json"
    out = StringIO()

    call_command("generate_keys", "--output", str(path), stdout=out)

    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    keys.parse_key_set(doc)
    assert_no_key_material(out.getvalue(), doc)
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]  # no temporary file left behind


def test_generate_keys_refuses_to_overwrite_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    call_command("generate_keys", "--output", str(path), stdout=StringIO())
    before = path.read_bytes()

    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("generate_keys", "--output", str(path), stdout=StringIO())
    call_command("generate_keys", "--output", str(path), "--if-missing", stdout=StringIO())

    assert path.read_bytes() == before


def test_generate_keys_writes_to_the_configured_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    with override_settings(PREVENTICONS_KEY_FILE=str(path)):
        call_command("generate_keys", stdout=StringIO())
    assert path.stat().st_mode & 0o777 == 0o600


def test_exclusive_write_never_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("existing")

    with pytest.raises(FileExistsError):
        keys.write_key_document(path, keys.generate_key_document(), replace=False)

    assert path.read_text() == "existing"
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_an_invalid_key_document_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(keys.KeyConfigurationError):
        keys.write_key_document(path, same_key_twice(keys.generate_key_document()))
    assert list(tmp_path.iterdir()) == []


def test_generated_key_sets_share_no_key() -> None:
    first, second = keys.generate_key_document(), keys.generate_key_document()
    assert not set(key_material(first)) & set(key_material(second))


def test_unknown_purpose_is_a_configuration_error() -> None:
    key_set = keys.get_key_set()
    with pytest.raises(keys.KeyConfigurationError, match="unknown encryption purpose"):
        key_set.keyring("blind_index")
    with pytest.raises(keys.KeyConfigurationError, match="unknown keyed-hash purpose"):
        key_set.hmac_key("field")


def test_a_key_file_made_before_a_keyed_hash_purpose_existed_says_how_to_complete_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    call_command("generate_keys", "--output", str(path), stdout=StringIO())
    doc = json.loads(path.read_text())
    del doc["access_log"]
    path.write_text(json.dumps(doc))
    with pytest.raises(keys.KeyConfigurationError, match=r"access_log: missing.*--add-missing"):
        keys.parse_key_set(doc)

    out = StringIO()
    call_command("generate_keys", "--output", str(path), "--add-missing", stdout=out)

    completed = json.loads(path.read_text())
    keys.parse_key_set(completed)
    # Every key already there is kept as it was; only the missing purpose is new.
    assert {k: v for k, v in completed.items() if k != "access_log"} == doc
    assert path.stat().st_mode & 0o777 == 0o600
    assert_no_key_material(out.getvalue(), completed)
    call_command("generate_keys", "--output", str(path), "--add-missing", stdout=StringIO())
    assert json.loads(path.read_text()) == completed  # a second run changes nothing


def test_add_missing_needs_an_existing_key_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("generate_keys", "--output", str(tmp_path / "absent.json"), "--add-missing")
