"""Rotating the AES-GCM keyrings (field, pseudonym_link, casefiles_link) while many processes keep running.

A rotation is four steps, each safe to interrupt and to repeat, because every process must know a key
before anything is sealed under it and nothing may still be sealed under a key that is removed:

1. ``add_key``: a fresh key joins the keyring, inactive. Restart every process: all can now open it.
2. ``activate_key``: new values are sealed under it. Restart every process: none still seals under the old.
   The activation is announced (preventicons.signals.keys_rotated), so the notary's ledger records it.
3. ``reencrypt``: every value not under the active key is opened and sealed again, in small batches.
4. ``retire_key``: the old key leaves the file, but only when no row in any store still uses it.

The HMAC keys (blind index, notes subject, casefiles index) are not rotated here: their outputs are looked
up, not opened, so rotating one means recomputing every index from plaintext.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Model, Q
from django.utils import timezone

from preventicons.crypto import (
    DecryptionError,
    ciphertext_prefix,
    key_id_of,
    open_sealed,
    seal,
    sealed_length,
)
from preventicons.dbrouter import database_for_model
from preventicons.fields import EncryptedTextField, Sealed
from preventicons.keys import (
    ENCRYPTION_PURPOSES,
    KEY_ID_PREFIXES,
    KeyConfigurationError,
    get_key_set,
    new_key,
    new_key_id,
    parse_key_set,
    reset_key_cache,
    write_key_document,
)
from preventicons.signals import keys_rotated

DEFAULT_BATCH_SIZE = 500


class KeyRotationError(Exception):
    """A rotation step was refused; the message says why and what to do. Nothing was changed."""


@dataclass(frozen=True)
class SealedColumn:
    """One encrypted column: the model, its field and the store it lives in."""

    model: type[Model]
    field: EncryptedTextField
    alias: str

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"


def sealed_columns(*, purposes: Iterable[str] | None = None) -> list[SealedColumn]:
    """Every encrypted column of every installed model, in all three stores, optionally of some purposes."""
    wanted = set(ENCRYPTION_PURPOSES if purposes is None else purposes)
    columns: list[SealedColumn] = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue  # same table as its concrete model, which is visited itself
        for model_field in model._meta.local_concrete_fields:
            if isinstance(model_field, EncryptedTextField) and model_field.purpose in wanted:
                columns.append(SealedColumn(model, model_field, database_for_model(model)))
    return columns


def _values_under(column: SealedColumn, key_id: str) -> int:
    manager = column.model._base_manager.using(column.alias)
    return manager.filter(**{f"{column.field.name}__startswith": Sealed(ciphertext_prefix(key_id))}).count()


def values_under_key(*, purpose: str, key_id: str) -> dict[str, int]:
    """How many values each column of the purpose holds under the key id (columns with none left out)."""
    counts = {column.label: _values_under(column, key_id) for column in sealed_columns(purposes=[purpose])}
    return {label: count for label, count in counts.items() if count}


# --- The key file ---------------------------------------------------------------------------------


def key_file_path() -> Path:
    """The key file that add, activate and retire edit; refuses when the keys are configured inline."""
    if getattr(settings, "PREVENTICONS_KEYS", ""):
        raise KeyRotationError(
            "the keys come from PREVENTICONS_KEYS (inline), which this command cannot edit: "
            "add, activate and retire change a key file. Change the secret behind PREVENTICONS_KEYS by the "
            "same steps, or move the keys to a file named by PREVENTICONS_KEY_FILE."
        )
    path = getattr(settings, "PREVENTICONS_KEY_FILE", "")
    if not path:
        raise KeyRotationError("no key file configured: set PREVENTICONS_KEY_FILE")
    return Path(path)


@contextmanager
def _editing_key_file() -> Iterator[dict[str, Any]]:
    """Yield the key document for editing; on a clean exit write it back atomically and forget cached keys.

    An exclusive lock on a sibling file serialises two operators editing at once, so neither's change is lost.
    """
    path = key_file_path()
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyRotationError(f"key file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise KeyRotationError(f"key file {path} is not valid JSON ({exc.msg}); fix it first") from None
        try:
            parse_key_set(doc)
        except KeyConfigurationError as exc:
            raise KeyRotationError(f"key file {path} is not a valid key set ({exc}); fix it first") from None
        yield doc
        try:
            write_key_document(path, doc)
        except OSError as exc:
            raise KeyRotationError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        os.close(lock_fd)  # releases the lock
    reset_key_cache()


def _keyring_of(doc: dict[str, Any], purpose: str) -> dict[str, Any]:
    if purpose not in ENCRYPTION_PURPOSES:
        raise KeyRotationError(
            f"{purpose!r} is not a rotatable keyring; choose one of {', '.join(ENCRYPTION_PURPOSES)}"
        )
    ring: dict[str, Any] = doc[purpose]
    return ring


def add_key(*, purpose: str) -> str:
    """Add a fresh key to the purpose's keyring without activating it; returns its key id."""
    with _editing_key_file() as doc:
        ring = _keyring_of(doc, purpose)
        key_id = new_key_id(KEY_ID_PREFIXES[purpose])
        while key_id in ring["keys"]:
            key_id = new_key_id(KEY_ID_PREFIXES[purpose])
        ring["keys"][key_id] = new_key()
    return key_id


def activate_key(*, purpose: str, key_id: str) -> bool:
    """Make a key of the keyring the one new values are sealed under; False when it already was."""
    with _editing_key_file() as doc:
        ring = _keyring_of(doc, purpose)
        if key_id not in ring["keys"]:
            known = ", ".join(sorted(ring["keys"]))
            raise KeyRotationError(f"{purpose} has no key {key_id!r} (its keys: {known})")
        changed = ring["active"] != key_id
        if changed:
            # Before the file is written: a rotation the notary's ledger could not record does not happen.
            keys_rotated.send(sender=None, purpose=purpose, key_id=key_id, day=timezone.localdate())
        ring["active"] = key_id
    return changed


def retire_key(*, purpose: str, key_id: str) -> None:
    """Remove a key from the file, only when it is not active and no row in any store is sealed under it."""
    with _editing_key_file() as doc:
        ring = _keyring_of(doc, purpose)
        if key_id not in ring["keys"]:
            known = ", ".join(sorted(ring["keys"]))
            raise KeyRotationError(f"{purpose} has no key {key_id!r} (its keys: {known})")
        if ring["active"] == key_id:
            raise KeyRotationError(f"{key_id} is the active {purpose} key; activate another key first")
        in_use = values_under_key(purpose=purpose, key_id=key_id)
        if in_use:
            where = ", ".join(f"{label}: {count}" for label, count in sorted(in_use.items()))
            raise KeyRotationError(
                f"{sum(in_use.values())} values are still sealed under {key_id} ({where}); removing the "
                f"key would make them unreadable. Run `rotate_keys reencrypt --purpose {purpose}` until it "
                "reports nothing left, after every process was restarted with the new active key."
            )
        del ring["keys"][key_id]


# --- Re-encryption --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchDone:
    """Progress after one batch: which model, which batch, how many values it re-sealed."""

    model_label: str
    alias: str
    batch: int
    resealed: int
    resealed_so_far: int


@dataclass
class ReencryptionReport:
    """What a re-encryption run did, and what it left under other keys."""

    resealed: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    remaining: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def is_complete(self) -> bool:
        return not self.stopped_early and not any(self.remaining.values())


def _needs_resealing(columns: list[SealedColumn], active: dict[str, str]) -> Q:
    # Filtering in SQL on the ciphertext prefix means a batch holds only rows with work to do, so a resumed
    # run skips finished rows without reading or locking them. Plaintext lookups are refused by the field;
    # a Sealed prefix carries no plaintext.
    needs = Q()
    for column in columns:
        name = column.field.name
        prefix = Sealed(ciphertext_prefix(active[column.field.attname]))
        needs |= Q(**{f"{name}__isnull": False}) & ~Q(**{f"{name}__startswith": prefix})
    return needs


def _remaining(columns: list[SealedColumn]) -> dict[str, int]:
    key_set = get_key_set()
    counts: dict[str, int] = {}
    for column in columns:
        active = key_set.keyring(column.field.purpose).active
        prefix = Sealed(ciphertext_prefix(active))
        name = column.field.name
        manager = column.model._base_manager.using(column.alias)
        counts[column.label] = (
            manager.filter(**{f"{name}__isnull": False}).exclude(**{f"{name}__startswith": prefix}).count()
        )
    return counts


def reencrypt(
    *,
    purposes: Iterable[str] | None = None,
    databases: Iterable[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
) -> ReencryptionReport:
    """Seal again, under its purpose's active key, every value sealed under another key; resumable.

    Each batch is one transaction on its model's store, rows in primary-key order, locked with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` where the database offers it, so live traffic is never blocked and
    a row being edited is left for the next run. Each write also compares the old ciphertext, so a value
    changed since it was read is never overwritten. ``max_batches`` stops after that many batches in all;
    ``databases`` limits the run to some stores (each may sit on its own server, behind its own role).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    columns = sealed_columns(purposes=purposes)
    if databases is not None:
        stores = set(databases)
        columns = [column for column in columns if column.alias in stores]
    key_set = get_key_set()
    report = ReencryptionReport()
    by_model: dict[type[Model], list[SealedColumn]] = {}
    for column in columns:
        by_model.setdefault(column.model, []).append(column)
        report.resealed.setdefault(column.label, 0)
    batches_run = 0
    for model, model_columns in by_model.items():
        if max_batches is not None and batches_run >= max_batches:
            report.stopped_early = True
            break
        alias = model_columns[0].alias
        active = {c.field.attname: key_set.keyring(c.field.purpose).active for c in model_columns}
        needs = _needs_resealing(model_columns, active)
        features = connections[alias].features
        pk_name = model._meta.pk.name if model._meta.pk else "pk"
        cursor: Any = None
        model_batches = 0
        model_total = 0
        while True:
            if max_batches is not None and batches_run >= max_batches:
                report.stopped_early = True
                break
            with transaction.atomic(using=alias):
                query = model._base_manager.using(alias).filter(needs)
                if cursor is not None:
                    query = query.filter(pk__gt=cursor)
                query = query.order_by("pk").only(pk_name, *(c.field.name for c in model_columns))
                if features.has_select_for_update:
                    query = query.select_for_update(skip_locked=features.has_select_for_update_skip_locked)
                rows = list(query[:batch_size])
                if not rows:
                    break
                resealed = sum(_reseal_row(row, model_columns, active, alias, report) for row in rows)
            cursor = rows[-1].pk
            batches_run += 1
            model_batches += 1
            model_total += resealed
            if on_batch is not None:
                on_batch(BatchDone(model._meta.label, alias, model_batches, resealed, model_total))
    report.remaining = _remaining(columns)
    return report


def _reseal_row(
    row: Model, columns: list[SealedColumn], active: dict[str, str], alias: str, report: ReencryptionReport
) -> int:
    old: dict[str, Sealed] = {}
    new: dict[str, Sealed] = {}
    for column in columns:
        model_field = column.field
        raw = row.__dict__.get(model_field.attname)
        if raw is None:
            continue
        try:
            if key_id_of(raw) == active[model_field.attname]:
                continue
            binding = model_field.binding_for(row)
            plaintext = open_sealed(raw, binding)
        except DecryptionError:
            # Left as it is and named (by its random primary key only): the operator must look at it.
            report.unreadable.append(f"{column.label} pk={row.pk}")
            continue
        old[model_field.name] = Sealed(raw)
        # At the length it had: a look-alike of an erased value stays as long as the value it replaced.
        new[model_field.name] = Sealed(seal(plaintext, binding, pad_to=sealed_length(raw)))
    if not new:
        return 0
    manager = type(row)._base_manager.using(alias)
    # update(), not save(): no signals, no custom save(), no other column touched.
    if not manager.filter(pk=row.pk, **old).update(**new):
        return 0  # changed since it was read; the next run picks it up under its new ciphertext
    for name in new:
        report.resealed[f"{type(row)._meta.label}.{name}"] += 1
    return len(new)


# --- Status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyUsage:
    """How many values one key id of one purpose seals; ``in_keyring`` False for ids the set lacks."""

    purpose: str
    key_id: str
    is_active: bool
    in_keyring: bool
    values: int


def key_usage() -> list[KeyUsage]:
    """Per purpose and key id, how many values in all stores are sealed under it."""
    key_set = get_key_set()
    usage: list[KeyUsage] = []
    for purpose in ENCRYPTION_PURPOSES:
        ring = key_set.keyring(purpose)
        columns = sealed_columns(purposes=[purpose])
        known = 0
        for key_id in sorted(ring.keys):
            count = sum(_values_under(column, key_id) for column in columns)
            known += count
            usage.append(KeyUsage(purpose, key_id, key_id == ring.active, True, count))
        total = sum(
            column.model._base_manager.using(column.alias)
            .filter(**{f"{column.field.name}__isnull": False})
            .count()
            for column in columns
        )
        if total > known:
            usage.extend(_unknown_key_ids(purpose, columns, set(ring.keys)))
    return usage


def _unknown_key_ids(purpose: str, columns: list[SealedColumn], known: set[str]) -> list[KeyUsage]:
    # Rare (a key retired too early, or a value written around the field): name the ids by reading them.
    counts: dict[str, int] = {}
    for column in columns:
        name = column.field.name
        query = column.model._base_manager.using(column.alias).filter(**{f"{name}__isnull": False})
        for key_id in known:
            query = query.exclude(**{f"{name}__startswith": Sealed(ciphertext_prefix(key_id))})
        for raw in query.values_list(name, flat=True).iterator():
            try:
                found = key_id_of(raw)
            except DecryptionError:
                found = "(not a ciphertext)"
            counts[found] = counts.get(found, 0) + 1
    return [KeyUsage(purpose, key_id, False, False, n) for key_id, n in sorted(counts.items())]
