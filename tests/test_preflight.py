"""`make test` says what it needs: .ci/preflight.py names the command for each missing piece, fails fast."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PREFLIGHT = Path(__file__).resolve().parent.parent / ".ci" / "preflight.py"


def preflight_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("preflight", PREFLIGHT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_preflight(**environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PREFLIGHT)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_everything_there_it_passes() -> None:
    result = run_preflight()
    assert result.returncode == 0, result.stderr
    assert "PostgreSQL, Redis, Chromium and gettext are there" in result.stdout


def test_a_dead_postgresql_redis_and_no_gettext_are_named_with_their_commands(tmp_path: Path) -> None:
    dead = "postgres://postgres@127.0.0.1:9/preventicons"
    result = run_preflight(
        DATABASE_URL=dead,
        NOTES_DATABASE_URL=dead,
        CASEFILES_DATABASE_URL=dead,
        REDIS_URL="redis://127.0.0.1:9/0",
        PATH=str(tmp_path),  # nothing on it: no msgfmt, no pg_ctlcluster, no redis-server
    )

    assert result.returncode == 1
    assert "PostgreSQL does not answer at 127.0.0.1:9" in result.stderr
    assert "apt-get install -y postgresql" in result.stderr
    assert "Redis does not answer at 127.0.0.1:9" in result.stderr
    assert "apt-get install -y redis-server" in result.stderr
    assert "apt-get install -y gettext" in result.stderr
    assert result.stderr.count("PostgreSQL does not answer") == 1  # one server, named once


def test_a_missing_chromium_is_named_with_its_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    preflight = preflight_module()
    monkeypatch.setattr(preflight, "CHROMIUM", str(tmp_path / "chromium"))

    (problem,) = preflight.check_chromium()

    assert "apt-get install -y chromium" in problem
