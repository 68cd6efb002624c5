"""The auditor's privacy checks for one organisation and period (filled in by the auditor's work on #20).

Each check gives a ``CheckResult``; the auditor's page lists them and an attestation states them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """One check: a stable code (for the attestation), its label in the reader's language, whether it
    passed, how many findings it has, and a short explanation with no name, contact detail or score."""

    code: str
    label: str
    passed: bool
    findings: int = 0
    detail: str = ""


def run_checks(organisation_id: int, start: dt.date, end: dt.date) -> list[CheckResult]:
    """Every privacy check for the organisation over [start, end]."""
    return []
