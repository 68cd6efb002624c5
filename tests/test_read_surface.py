"""Apps outside ``participants`` read participants only through participants/queries.py (issue #16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A lookup through a relation, a query on the model, or a column read off a related participant.
DIRECT_READS = re.compile(
    r"participant__|Participant\.objects|\.participant\.[a-z]|Participant\.(Status|WeeklyChannel)"
)


@pytest.mark.parametrize("app", ["scores", "casefiles"])
def test_no_module_outside_participants_reads_participant_columns(app: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if DIRECT_READS.search(line)
    ]

    assert found == []


def test_casefiles_receivers_only_call_casefiles_operations() -> None:
    source = (ROOT / "casefiles" / "receivers.py").read_text()

    assert "casefiles.models" not in source
    assert ".objects" not in source
