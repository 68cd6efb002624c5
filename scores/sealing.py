"""How scores are stored unreadable and unlinkable: per-week pseudonyms and values sealed to their row.

A score row carries ``week_pseudonym(P, week)``, a keyed hash of the participant's secret P and the week,
never P itself: it repeats in no other week, so a dump (or many weekly dumps) cannot gather one person's
weeks. Only someone who holds P and the key can derive a person's per-week pseudonyms and find the rows:
the participant themselves (their export), or a dossier (casefiles keeps P sealed). Once a stop destroys
P, nobody can derive them any more, and every past week of that person belongs to nobody, without touching
a single score row.

The value and the frozen figures are sealed with AES-GCM (preventicons.crypto), bound to their row by the
row's natural key rather than its primary key: the week close gives every row of the week a new random id
(so an open-week dump cannot be lined up with later ones), and a binding to the id would force re-sealing
every value at each close. The natural key (per-week pseudonym and week for a score; organisation,
department and week for an aggregate) is unique per row, as the unique constraints guarantee, and does not
change when the row is rewritten, so a ciphertext copied to any other row still fails to open.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.core import checks
from django.db.models.expressions import Combinable

from preventicons import crypto
from preventicons.fields import EncryptedAttribute, EncryptedTextField, Sealed

# The identity store's keyed-hash key, under a domain label of its own: the e-mail and phone indexes use
# the same key with other labels, so no per-week pseudonym can ever equal a blind index (keyed_hash puts
# the label in front of the value). Not a new key purpose: that would break every existing key file.
WEEK_PSEUDONYM_PURPOSE = "blind_index"
WEEK_PSEUDONYM_LABEL = "score-week-pseudonym"
WEEK_PSEUDONYM_LENGTH = 64  # hex of HMAC-SHA256
VALUES = range(1, 6)
# What a score's sealed department holds for a participant without one.
NO_DEPARTMENT = "-"


def week_pseudonym(pseudonym: str, week: dt.date) -> str:
    """The pseudonym a score of ``week`` carries for the holder of P; different in every week."""
    if not pseudonym:
        # An empty P would give everyone without one the same pseudonym.
        raise ValueError("a per-week pseudonym needs the participant's pseudonym")
    return crypto.keyed_hash(WEEK_PSEUDONYM_PURPOSE, WEEK_PSEUDONYM_LABEL, f"{pseudonym}:{week.isoformat()}")


def week_pseudonyms(week: dt.date) -> Callable[[str], str]:
    """``week_pseudonym(P, week)`` as a function of P, for a batch over one week (the week close)."""
    hashed = crypto.keyed_hasher(WEEK_PSEUDONYM_PURPOSE, WEEK_PSEUDONYM_LABEL)
    suffix = f":{week.isoformat()}"

    def of(pseudonym: str) -> str:
        if not pseudonym:
            raise ValueError("a per-week pseudonym needs the participant's pseudonym")
        return hashed(pseudonym + suffix)

    return of


def padded_json(data: Any, *, width: int) -> str:
    """JSON padded with spaces to exactly ``width`` characters, so every state seals to the same length.

    crypto.seal pads to length buckets, but two states on either side of a bucket edge (a participant who
    never answered against one who did) would still differ in length in a dump: a fixed width closes that.
    """
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if len(text) > width:
        raise ValueError(f"sealed JSON longer than its fixed width of {width}")
    return text.ljust(width)


class NaturalKeySealedField(EncryptedTextField):
    """Text sealed under the ``field`` keyring and bound to the row's natural key (``bound_to``), not its id.

    For rows whose id changes by design (the week close rewrites a week's scores with new random ids) or
    that have no random id (frozen aggregates). Key rotation (preventicons.keyrotation) finds it as any
    EncryptedTextField and uses this binding.
    """

    def __init__(self, *args: Any, bound_to: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.bound_to = tuple(bound_to)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["bound_to"] = self.bound_to
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = [
            error
            for error in super().check(**kwargs)
            # The primary key is not part of the binding, so it need not be known before the first save.
            if error.id != "preventicons.E012"
        ]
        if not self.bound_to:
            errors.append(
                checks.Error("a natural-key sealed field needs bound_to", obj=self, id="scores.E001")
            )
        return errors

    def binding_for(self, instance: Any) -> crypto.Binding:
        """Purpose, table, column and the row's natural key (``None`` as ``-``)."""
        parts = []
        for name in self.bound_to:
            value = getattr(instance, name)
            parts.append("-" if value is None else str(value))
        return natural_key_binding(self.purpose, self.model._meta.db_table, str(self.column), parts)


def natural_key_binding(purpose: str, table: str, column: str, parts: list[str]) -> crypto.Binding:
    """The binding NaturalKeySealedField uses, for paths that seal without a model instance (raw inserts)."""
    return crypto.Binding(purpose, table, column, "/".join(parts))


class ScoreValueAttribute(EncryptedAttribute):
    """Opens the sealed value to the int it stands for."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is None or value is None:
            return value
        return int(value)


class SealedScoreValueField(NaturalKeySealedField):
    """A smiley value 1-5, sealed. The range is checked here: the database sees only ciphertext."""

    # For django-stubs: the attribute is an int (ScoreValueAttribute opens it to one), not the text the
    # column holds. The stubs fix TextField's types, hence the ignores.
    _pyi_private_set_type: int | Combinable  # type: ignore[assignment]
    _pyi_private_get_type: int  # type: ignore[assignment]

    descriptor_class = ScoreValueAttribute

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is not None and not isinstance(value, Sealed):
            model_instance.__dict__[self.attname] = score_value_text(value)
        return super().pre_save(model_instance, add)


def score_value_text(value: Any) -> str:
    """The plaintext a score value is sealed as; ValueError outside 1-5 (what the CHECK used to refuse)."""
    if isinstance(value, bool) or int(value) not in VALUES or str(int(value)) != str(value).strip():
        raise ValueError("a score is a whole number from 1 to 5")
    return str(int(value))


def department_text(department_id: int | None) -> str:
    """The plaintext a score's department is sealed as: its id, or NO_DEPARTMENT."""
    return NO_DEPARTMENT if department_id is None else str(int(department_id))


def department_of(text: str) -> int | None:
    """The department id a score's opened department text stands for (None: no department)."""
    return None if text == NO_DEPARTMENT else int(text)
