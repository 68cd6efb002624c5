"""The casemanager's forms: search by number, notes, trajectories and sessions, closing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from casefiles.models import ProgressNote
from casefiles.notes import MAX_NOTE_LENGTH
from casefiles.trajectories import kinds

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SearchForm(forms.Form):
    number = forms.CharField(
        label=_("Dossier number"),
        max_length=32,
        help_text=_("For example D-ABCD2345X. Lower case, spaces and dashes are fine."),
    )


class NoteForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind of note"),
        choices=[(kind.value, kind.label) for kind in ProgressNote.Kind if kind != ProgressNote.Kind.CLOSING],
    )
    text = forms.CharField(
        label=_("Note"),
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "Anonymous: no name, e-mail address, phone number, BSN, bank account or address. "
            "The form says which part to leave out."
        ),
    )


class CloseForm(forms.Form):
    text = forms.CharField(
        label=_("Closing note"),
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Why the dossier closes. After closing, the dossier can be read but no longer changed."),
    )


class TrajectoryForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of trajectory"), choices=[])
    started_on = forms.DateField(label=_("Start date"), widget=DATE_INPUT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = kinds()  # type: ignore[attr-defined]


class SessionForm(forms.Form):
    planned_on = forms.DateField(label=_("Planned on"), widget=DATE_INPUT)
    held_on = forms.DateField(label=_("Held on"), widget=DATE_INPUT, required=False)


class HeldForm(forms.Form):
    held_on = forms.DateField(label=_("Held on"), widget=DATE_INPUT)


class EndForm(forms.Form):
    ended_on = forms.DateField(label=_("End date"), widget=DATE_INPUT)
