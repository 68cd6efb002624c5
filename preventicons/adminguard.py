"""An admin that answers only what it shows: the lookups, searches and columns every ModelAdmin may offer.

Django's admin applies any URL parameter it does not recognise as a queryset filter, after a
``lookup_allowed`` that lets through every lookup on a model's own fields and many relation paths. So
``?key__startswith=3f`` on the TOTP device list answers one row or none: an oracle that reads a secret a
character at a time, and relation paths (``organisation__participants__email_index__startswith=``) reach
blind indexes and participation from any list. Here a list accepts exactly the parameters its own
``list_filter`` declares; anything else is refused with ``DisallowedModelAdminLookup`` (a 400 that says
nothing about rows) before any query runs.

``PlatformAdminSite`` (preventicons/roles.py) makes every registered ModelAdmin strict, including those
that django-otp and two-factor register themselves, and refuses at start-up an admin that would filter,
search or show a sensitive field (``check_model_admin``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.filters import FieldListFilter, ListFilter, SimpleListFilter
from django.contrib.admin.options import ShowFacets
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db.models import Field, Model
from django.http import HttpRequest

from preventicons.fields import EncryptedTextField

# Never filterable, searchable, orderable or shown, on any model: secrets of second factors (TOTP and phone
# keys, backup codes, staff phone numbers), blind indexes, token and code hashes, the pseudonym link, and
# participation (who answered which week, who paused messages).
SENSITIVE_FIELD_NAMES = frozenset(
    {
        "key",
        "token",
        "number",
        "last_t",
        "drift",
        "pseudonym",
        "code_hash",
        "token_hash",
        "last_response_week",
        "weeks_without_response",
        "messages_paused",
        "prefers_email",
        "prefers_sms",
        "unlisted_on",
    }
)
SENSITIVE_SUFFIXES = ("_index", "_hash", "_key", "_token")


def is_sensitive(field: Any) -> bool:
    """A field whose value, or whose ordering, tells a secret, a blind index or someone's participation."""
    name = getattr(field, "name", "")
    return (
        isinstance(field, EncryptedTextField)
        or name in SENSITIVE_FIELD_NAMES
        or name.endswith(SENSITIVE_SUFFIXES)
    )


def _resolve(model: type[Model], path: str) -> list[Any] | None:
    try:
        return list(get_fields_from_path(model, path))
    except (FieldDoesNotExist, AttributeError, NotRelationField):
        return None


class ReadOnlyMixin:
    """An admin that shows rows and never adds, changes or deletes them (records kept by the app itself).

    Set ``actions = None`` beside it too: the bulk delete action is offered otherwise (refused on use).
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StrictLookupsMixin:
    """Accept exactly the URL parameters of this admin's own ``list_filter``; nothing across relations.

    Facet counts are off: each is one more count query per filter choice, and counts are what an oracle
    reads.
    """

    show_facets = ShowFacets.NEVER

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Django 5.2 always passes the request; a caller without one gets nothing.
        return request is not None and lookup in self.declared_filter_parameters(request)

    def declared_filter_parameters(self, request: HttpRequest) -> set[str]:
        """The query parameters the declared list filters read, e.g. ``organisation__id__exact``."""
        model_admin: Any = self
        list_filter = model_admin.get_list_filter(request)
        # The names follow from the declarations alone, but building a filter queries its choices: once.
        cache: dict[tuple[Any, ...], frozenset[str]] = model_admin.__dict__.setdefault(
            "_declared_filters", {}
        )
        key = tuple(list_filter)
        if key not in cache:
            parameters: set[str] = set()
            for item in list_filter:
                spec = _filter_spec(model_admin=model_admin, item=item, request=request)
                parameters.update(name for name in spec.expected_parameters() or () if name)
            cache[key] = frozenset(parameters)
        return set(cache[key])

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        # ``?_to_field=`` picks the column a popup hands back: only the primary key, never a secret.
        model_admin: Any = self
        return to_field == model_admin.model._meta.pk.attname


def _filter_spec(*, model_admin: Any, item: Any, request: HttpRequest) -> ListFilter:
    model = model_admin.model
    if isinstance(item, type) and issubclass(item, SimpleListFilter):
        spec: ListFilter = item(request, {}, model, model_admin)
        return spec
    if isinstance(item, (list, tuple)):
        field_path, filter_class = item
    else:
        field_path, filter_class = item, None
    field = get_fields_from_path(model, field_path)[-1]
    if filter_class is None:
        return FieldListFilter.create(field, request, {}, model, model_admin, field_path=field_path)
    spec = filter_class(field, request, {}, model, model_admin, field_path=field_path)
    return spec


def check_model_admin(model_admin: Any) -> None:
    """Raise ImproperlyConfigured when an admin would filter across relations or use a sensitive field."""
    model = model_admin.model
    label = f"{model._meta.label} ({type(model_admin).__name__})"
    for item in model_admin.list_filter:
        if isinstance(item, type) and issubclass(item, SimpleListFilter):
            continue
        path = item[0] if isinstance(item, (list, tuple)) else item
        fields = _resolve(model, path)
        if fields is None or len(fields) != 1 or is_sensitive(fields[0]):
            raise ImproperlyConfigured(f"{label}: list_filter {path!r} is not a plain, non-sensitive field")
    for path in model_admin.search_fields:
        fields = _resolve(model, path.lstrip("^=@"))
        if fields is None or any(is_sensitive(field) for field in fields):
            raise ImproperlyConfigured(f"{label}: search_fields {path!r} reaches a sensitive field")
    shown = [*model_admin.list_display, *_flat_fields(model_admin), *(model_admin.readonly_fields or ())]
    for name in shown:
        if not isinstance(name, str):
            continue
        try:
            field: Field[Any, Any] | Any = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue  # a method or an admin attribute: it shows what its code chooses
        if is_sensitive(field):
            raise ImproperlyConfigured(f"{label}: {name!r} is sensitive and must not be shown")
    if model_admin.date_hierarchy:
        raise ImproperlyConfigured(f"{label}: no date_hierarchy (its lookups are parameters too)")


def _flat_fields(model_admin: Any) -> list[str]:
    names: list[str] = []
    for source in (
        model_admin.fields,
        *(options.get("fields", ()) for _, options in model_admin.fieldsets or ()),
    ):
        for entry in source or ():
            names.extend(entry if isinstance(entry, (list, tuple)) else [entry])
    return names


def make_strict(model_admin: admin.ModelAdmin[Any]) -> None:
    """Give this registered ModelAdmin the strict lookups (in place), after checking what it shows."""
    if not isinstance(model_admin, StrictLookupsMixin):
        cls = type(model_admin)
        model_admin.__class__ = type(f"Strict{cls.__name__}", (StrictLookupsMixin, cls), {})
    check_model_admin(model_admin)
