"""An encrypted model field whose ciphertext is bound to its table, column and row.

In Python the attribute holds plaintext; in the database the column holds ``v1.<key id>.<nonce+ciphertext>``.
Because the row's primary key is part of the associated data, a value can only be sealed and opened with
the instance in hand: the field opens lazily through its descriptor, and refuses every path that would
write plaintext without a row (``QuerySet.update(field="...")``, ``bulk_update``) and every lookup that
would put plaintext in a query (``filter(field="...")``, ``icontains``, ``regex``): only ``exact``, ``in`` and
``startswith`` with a ``Sealed`` value (``startswith`` finds values by key id, for rotation) and ``isnull``
are offered. Models that use it need a primary key known before the first save (a random UUID).

Behind all that, the database refuses plaintext itself: each encrypted column carries a CHECK that it holds
NULL or a ``v1.`` ciphertext (``sealed_only``), so a path the field cannot see (``update(name=Value(...))``,
raw SQL, a hand-written data migration) fails instead of writing a name in clear. A model without that
constraint for one of its encrypted fields fails the system checks (preventicons.E013).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, cast

from django.core import checks
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import StartsWith
from django.db.models.query_utils import DeferredAttribute

from preventicons.crypto import (
    FORMAT,
    Binding,
    ColumnCipher,
    DecryptionError,
    open_sealed,
    padded_length,
    seal,
    sealed_length,
)
from preventicons.keys import ENCRYPTION_PURPOSES


class Sealed(str):
    """A ciphertext as read from, or bound for, the database. Distinct from plaintext by type."""

    __slots__ = ()


class SealedPrefix(StartsWith):
    """``startswith`` on an encrypted column, with a Sealed prefix only (``v1.<key id>.``)."""

    def get_prep_lookup(self) -> Any:
        if not isinstance(self.rhs, Sealed) and not hasattr(self.rhs, "resolve_expression"):
            raise TypeError(
                "an encrypted column is matched only against a Sealed ciphertext prefix, never plaintext"
            )
        return super().get_prep_lookup()


_PLAIN_LOOKUPS = frozenset({"exact", "in", "isnull"})
_SEALED_ONLY_NAME = "%(app_label)s_%(class)s_{field}_sealed"


def sealed_only(*field_names: str) -> list[models.CheckConstraint]:
    """One database CHECK per encrypted field: the column holds NULL or a ciphertext, never plaintext.

    For the model's Meta.constraints: ``constraints = [..., *sealed_only("name", "email")]``.
    """
    return [
        models.CheckConstraint(
            # The lookup class itself, not ``field__startswith``: that would be the field's SealedPrefix,
            # which takes only Sealed values, and a migration stores the prefix as a plain string.
            condition=cast("Q", Q(**{f"{name}__isnull": True}) | StartsWith(F(name), f"{FORMAT}.")),
            name=_SEALED_ONLY_NAME.format(field=name),
            violation_error_message=f"{name} holds ciphertext only",
        )
        for name in field_names
    ]


class EncryptedAttribute(DeferredAttribute):
    """Holds plaintext or a Sealed value in the instance; opens the latter on first read."""

    field: EncryptedTextField

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = open_sealed(value, self.field.binding_for(instance))
            if self.field.none_sealed and value == EncryptedTextField.NONE:
                value = None
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """Text sealed with AES-GCM under the given purpose's keyring. Not searchable: pair with a blind index.

    ``pad_to``: every value is padded to at least this many bytes before sealing (crypto.seal), so values
    of different lengths, and the placeholder below, seal to one length. ``none_sealed``: None is never
    left NULL but sealed as empty text (and read back as None), as SealedDayOrNoneField does for a day: a
    NULL beside ciphertexts would tell a dump which rows have a value (who enrolled, who stopped).
    """

    descriptor_class = EncryptedAttribute
    # What None is sealed as in a ``none_sealed`` column: no value holds empty text (it reads as None).
    NONE = ""

    def __init__(
        self, *args: Any, purpose: str = "field", pad_to: int = 0, none_sealed: bool = False, **kwargs: Any
    ) -> None:
        self.purpose = purpose
        self.pad_to = pad_to
        self.none_sealed = none_sealed
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        if self.pad_to:
            kwargs["pad_to"] = self.pad_to
        if self.none_sealed:
            kwargs["none_sealed"] = True
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def look_alike(self, instance: Any) -> Sealed:
        """None sealed to this row at the length the row's value has now: what erasing it leaves behind.

        A ``none_sealed`` column erased (a stop, the anonymisation) must read like one that still holds its
        value, bucket included; the length is taken from the ciphertext, or from the text it opened to.
        """
        value = instance.__dict__.get(self.attname)
        if isinstance(value, Sealed):
            width = sealed_length(value)
        elif isinstance(value, str):
            width = padded_length(max(len(value.encode("utf-8")), self.pad_to))
        else:
            width = self.pad_to
        return Sealed(seal(self.NONE, self.binding_for(instance), pad_to=width))

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.purpose not in ENCRYPTION_PURPOSES:
            errors.append(
                checks.Error(
                    f"unknown encryption purpose {self.purpose!r}",
                    obj=self,
                    id="preventicons.E010",
                )
            )
        pk = self.model._meta.pk
        if pk is not None and not pk.has_default():
            errors.append(
                checks.Error(
                    "an encrypted field needs a primary key known before the first save",
                    hint="Give the model `id = models.UUIDField(primary_key=True, default=uuid.uuid4)`: "
                    "the ciphertext is bound to its row.",
                    obj=self,
                    id="preventicons.E012",
                )
            )
        meta = self.model._meta
        wanted = _SEALED_ONLY_NAME.format(field=self.name) % {
            "app_label": meta.app_label.lower(),
            "class": self.model.__name__.lower(),
        }
        if not meta.abstract and wanted not in {constraint.name for constraint in meta.constraints}:
            errors.append(
                checks.Error(
                    "an encrypted column needs a database check that it holds ciphertext only",
                    hint=f'Add *sealed_only("{self.name}") to {self.model.__name__}.Meta.constraints '
                    "(preventicons.fields.sealed_only).",
                    obj=self,
                    id="preventicons.E013",
                )
            )
        if getattr(self, "db_index", False) or getattr(self, "_unique", False):
            errors.append(
                checks.Error(
                    "an encrypted column cannot be indexed or unique: use a blind index column",
                    obj=self,
                    id="preventicons.E011",
                )
            )
        return errors

    def binding_for(self, instance: Any) -> Binding:
        """Where this field's value of this row lives: purpose, table, column and primary key."""
        if instance.pk is None:
            raise DecryptionError(
                f"{self.model._meta.db_table}.{self.column}: the row needs its primary key before sealing"
            )
        return Binding(self.purpose, self.model._meta.db_table, str(self.column), str(instance.pk))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "startswith":
            return SealedPrefix
        if lookup_name in _PLAIN_LOOKUPS:
            return super().get_lookup(lookup_name)
        # icontains, regex, gt, ...: each would send plaintext to the database and match nothing.
        return None

    def get_transform(self, lookup_name: str) -> Any:
        return None

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None and self.none_sealed:
            value = self.NONE
        if value is None:
            return value
        if isinstance(value, Sealed):
            # A ciphertext that was never opened is written back as it is, but only to the row it belongs to:
            # a copied instance (pk changed) would otherwise store a value that can never be opened again.
            open_sealed(value, self.binding_for(model_instance))
            return value
        if not isinstance(value, str):
            raise TypeError(f"{self.attname} takes text, not {type(value).__name__}")
        return Sealed(seal(value, self.binding_for(model_instance), pad_to=self.pad_to))

    def get_prep_value(self, value: Any) -> Any:
        if value is None or isinstance(value, Sealed) or hasattr(value, "resolve_expression"):
            return value
        raise TypeError(self._plaintext_refusal())

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return str(value)
        if hasattr(value, "resolve_expression"):
            return value
        raise TypeError(self._plaintext_refusal())

    def _plaintext_refusal(self) -> str:
        return (
            f"{self.model._meta.db_table}.{self.column}: plaintext cannot reach the database without its "
            "row; set the attribute and save() the instance (search through a blind index)"
        )

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        # Serialisation (dumpdata, fixtures) never writes plaintext: it writes what the column holds.
        raise TypeError(f"{self.attname} is encrypted and is not serialised")


class SealedChoiceField(EncryptedTextField):
    """A short value from a fixed set (a status), sealed to its row: the database cannot filter on it.

    What a dump must not tell (who declined, paused or stopped) lives here; the application opens it and
    decides in Python. Every value is padded to the same length bucket, so the ciphertexts of all choices
    look alike. The default applies in Python only, never in a migration: in the schema it would be
    plaintext, which the column's CHECK refuses.
    """

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("default", None)
        return name, path, args, kwargs


class SealedValueAttribute(EncryptedAttribute):
    """Opens the sealed text to the field's Python value (a flag, a day, a number)."""

    field: SealedValueField

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is None or not isinstance(value, str):
            return value
        return self.field.from_text(value)


class SealedValueField(SealedChoiceField):
    """A short value that is not text, sealed to its row like SealedChoiceField: its Python value in the
    attribute, its text (``to_text``) in the ciphertext. The database can neither filter nor sort on it."""

    descriptor_class = SealedValueAttribute

    def to_text(self, value: Any) -> str:
        raise NotImplementedError

    def from_text(self, text: str) -> Any:
        raise NotImplementedError

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, str):
            return super().pre_save(model_instance, add)
        model_instance.__dict__[self.attname] = self.to_text(value)
        try:
            return super().pre_save(model_instance, add)
        finally:
            model_instance.__dict__[self.attname] = value


class SealedBooleanField(SealedValueField):
    """A flag (messages paused), sealed to its row; True or False in Python."""

    TRUE = "1"
    FALSE = "0"
    # For django-stubs: the attribute is a bool, not the text the column holds.
    _pyi_private_set_type: bool  # type: ignore[assignment]
    _pyi_private_get_type: bool  # type: ignore[assignment]

    def to_text(self, value: Any) -> str:
        return self.TRUE if value else self.FALSE

    def from_text(self, text: str) -> bool:
        return text == self.TRUE


class SealedDateField(SealedValueField):
    """A day (when a note was written), sealed to its row; a date in Python, ISO 8601 inside."""

    # No empty text as the default of a required value: a row saved without one fails, as a date's would.
    empty_strings_allowed = False
    _pyi_private_set_type: dt.date  # type: ignore[assignment]
    _pyi_private_get_type: dt.date  # type: ignore[assignment]

    def to_text(self, value: Any) -> str:
        # A datetime is a date too, but its time would be sealed with it and never read back as a day.
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise TypeError(f"{self.attname} takes a date, not {type(value).__name__}")
        return value.isoformat()

    def from_text(self, text: str) -> dt.date:
        return dt.date.fromisoformat(text)


class SealedDayOrNoneField(SealedDateField):
    """A day or none (when a dossier closed), sealed to its row either way: none is sealed as empty text,
    never left NULL. A NULL beside the ciphertext of a day would tell a dump which rows have one; sealed,
    both pad to the same bucket and read alike."""

    NONE = ""
    _pyi_private_set_type: dt.date | None  # type: ignore[assignment]
    _pyi_private_get_type: dt.date | None  # type: ignore[assignment]

    def to_text(self, value: Any) -> str:
        return self.NONE if value is None else super().to_text(value)

    def from_text(self, text: str) -> dt.date | None:  # type: ignore[override]
        return None if text == self.NONE else super().from_text(text)

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        if model_instance.__dict__.get(self.attname) is not None:
            return super().pre_save(model_instance, add)
        model_instance.__dict__[self.attname] = self.NONE
        try:
            return super().pre_save(model_instance, add)
        finally:
            model_instance.__dict__[self.attname] = None


class SealedIntegerField(SealedValueField):
    """A whole number (a note's place in its dossier's order), sealed to its row; an int in Python."""

    # No empty text as the default of a required value: a row saved without one fails, as a date's would.
    empty_strings_allowed = False
    _pyi_private_set_type: int  # type: ignore[assignment]
    _pyi_private_get_type: int  # type: ignore[assignment]

    def to_text(self, value: Any) -> str:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{self.attname} takes an int, not {type(value).__name__}")
        return str(value)

    def from_text(self, text: str) -> int:
        return int(text)


class ContactHashField(models.CharField):
    """A keyed hash of a contact detail (a blind index, a listed hash): 64 hex characters in every row.

    A row without one (no such contact, an address held by someone else, erased by a stop) gets a random
    look-alike on save instead of NULL: a NULL told a dump whose row a stop or the anonymisation had erased.
    64 random hex characters are 256 random bits: no keyed hash of any address or number equals one, so a
    look-alike matches no lookup and collides with nothing in a unique constraint.
    """

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        if getattr(model_instance, self.attname) is None:
            setattr(model_instance, self.attname, look_alike_hash())
        return super().pre_save(model_instance, add)


def look_alike_hash() -> str:
    """What ContactHashField holds for no hash: random, as long as a keyed hash, equal to none."""
    return secrets.token_hex(32)


def open_column(model: type[models.Model], name: str, pk: object, sealed: str | None) -> str | None:
    """Open what ``values_list`` gave of an encrypted column of ``model``'s row ``pk`` (None stays None).

    For batch paths that read many rows without building instances; the same binding the field uses.
    """
    if sealed is None:
        return None
    field = model._meta.get_field(name)
    assert isinstance(field, EncryptedTextField)
    text = open_sealed(str(sealed), Binding(field.purpose, model._meta.db_table, str(field.column), str(pk)))
    return None if field.none_sealed and text == field.NONE else text


def column_of(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s field ``name``, for statements written by hand."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} has no column of its own")
    return str(field.column)


def column_cipher(model: type[models.Model], name: str) -> ColumnCipher:
    """open_column for many rows of one column: the same binding, with the per-column work done once.

    Reads the keys when made: make one per batch, so a batch after a key rotation sees the new keys.
    """
    field = model._meta.get_field(name)
    assert isinstance(field, EncryptedTextField)
    return ColumnCipher(field.purpose, model._meta.db_table, str(field.column), pad_to=field.pad_to)


def as_stored(name: str) -> models.ExpressionWrapper:
    """An encrypted column read as the text it holds, for ``values_list`` in a batch that opens many rows
    with a ``column_cipher``: read plainly, each value would go through the field's converter (a call and a
    wrapper per value, half a second for the 100,000 rows of a week close), and the ciphers take text."""
    return models.ExpressionWrapper(F(name), output_field=models.TextField())
