"""Sections that higher apps add to a participant's data export, without participants importing them.

An app above participants (scores, casefiles) registers a function in its ``AppConfig.ready()``::

    register_export_section("weekly_scores", weekly_values_for)

The function takes the participant's pseudonym P and returns JSON-ready data held under P, and only that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ExportSection = Callable[[str], list[Any] | dict[str, Any]]

_sections: dict[str, ExportSection] = {}


class ExportSectionConflict(Exception):
    """Two different functions were registered under one section name."""


def register_export_section(name: str, fn: ExportSection) -> None:
    """Add a section to every export; registering the same function again is harmless (ready() may rerun)."""
    existing = _sections.get(name)
    if existing is not None and existing is not fn:
        raise ExportSectionConflict(f"export section {name!r} is already registered by another function")
    _sections[name] = fn


def export_sections(pseudonym: str | None) -> dict[str, list[Any] | dict[str, Any]]:
    """Every registered section for this pseudonym; without one (stopped, never enrolled) each is empty."""
    found: dict[str, list[Any] | dict[str, Any]] = {}
    for name, fn in sorted(_sections.items()):
        found[name] = fn(pseudonym) if pseudonym else []
    return found


# How the account page shows a weekly answer: the face the participant tapped and its words. Which emotion a
# number means lives in the app that asks the question (scores), which registers it here.
AnswerFace = tuple[Any, str]
_answer_faces: dict[int, AnswerFace] = {}


def register_answer_faces(faces: dict[int, AnswerFace]) -> None:
    """For each answer value its label and the static path of its image; registering again replaces them."""
    _answer_faces.update(faces)


def answer_face(value: int) -> AnswerFace | None:
    """The label and image of an answer value, or None when no app registered one."""
    return _answer_faces.get(value)
