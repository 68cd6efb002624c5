"""The admin answers only what it shows: every list accepts exactly its declared filters, nothing else.

Written as the attack from the issue: a platform admin (both factors) pages through URL filters on every
registered ModelAdmin, over every field path up to two relations deep, hoping that "one row or none" reads
a TOTP key, a blind index or who answered which week. Every such request must be refused before a query
runs (400, the same page whatever the rows), so the attacker learns nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.core.exceptions import ImproperlyConfigured
from django.db.models import ForeignObjectRel, Model
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor.plugins.phonenumber.models import PhoneDevice

from participants.models import Organisation, Participant, StaffUser
from preventicons.adminguard import StrictLookupsMixin, check_model_admin
from tests.conftest import ALL_DATABASES, login_verified

# The access log's list (casefiles/admin.py) reads the casefiles store.
pytestmark = pytest.mark.django_db(databases=ALL_DATABASES)
LOOKUPS = {"": "1", "__exact": "1", "__startswith": "a", "__gt": "0", "__regex": "."}

# What each list may be filtered by: the parameters of its own list_filter, and nothing else.
DECLARED = {
    "participants.organisation": {"sector", "sector__isnull"},
    "participants.department": {"organisation__id__exact", "organisation__isnull"},
    "participants.processingagreement": {"party__exact", "party__isnull"},
    # Which casemanagers serve an organisation: by organisation only (participants/casemanagers.py).
    "participants.casemanagerlink": {"organisation__id__exact", "organisation__isnull"},
    "participants.staffuser": {
        "groups__id__exact",
        "groups__isnull",
        "organisation__id__exact",
        "organisation__isnull",
        "is_active__exact",
        "is_active__isnull",
    },
    "participants.participant": {
        "organisation__id__exact",
        "organisation__isnull",
        # Not status: it is sealed (who declined, paused or stopped is personal), and shown nowhere.
        "is_listed__exact",
        "is_listed__isnull",
    },
    # The access log (casefiles/admin.py): by action and by date only, never by who, which dossier or chain.
    "casefiles.accesslogentry": {"action__exact", "action__isnull", "at__gte", "at__lt"},
    # Dossiers by open or closed only (sealed, so chosen in Python): never by number, organisation or
    # casemanager (who has how many).
    "casefiles.dossier": {"open"},
    "casefiles.deputy": {"starts_on__gte", "starts_on__lt"},
    "notary.engagement": {"engaged_on__gte", "engaged_on__lt"},
    "otp_totp.totpdevice": {"confirmed__exact", "confirmed__isnull"},
    "otp_static.staticdevice": {"confirmed__exact", "confirmed__isnull"},
    "phonenumber.phonedevice": {"confirmed__exact", "confirmed__isnull"},
}


def field_paths(model: type[Model], depth: int, prefix: str = "") -> list[str]:
    """Every field path from this model, forward and reverse relations, up to ``depth`` relations deep."""
    paths = []
    for field in model._meta.get_fields():
        if isinstance(field, ForeignObjectRel):
            name = field.field.related_query_name()
        elif hasattr(field, "attname") or field.many_to_many:
            name = field.name
        else:
            continue  # a generic foreign key: not a query path
        paths.append(prefix + name)
        if field.is_relation and field.related_model is not None and depth > 0:
            paths.extend(field_paths(field.related_model, depth - 1, f"{prefix}{name}__"))
    return paths


def changelist(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def world(organisation: Organisation, employer: StaffUser, platform_admin: StaffUser) -> dict[str, Any]:
    """Rows behind every list, so a filter that were applied would have something to count."""
    backup = StaticDevice.objects.create(user=employer, name="backup")
    backup.token_set.create(token="k3yc0d3x")
    phone = PhoneDevice.objects.create(user=employer, name="backup", number="+31612345678", method="sms")
    participant = Participant(
        organisation=organisation,
        department=organisation.departments.first(),
        status=Participant.Status.ACTIVE,
        email_index="e" * 64,
        mobile_index="f" * 64,
    )
    participant.save()
    return {"employer": employer, "phone": phone, "participant": participant, "admin": platform_admin}


@pytest.fixture
def admin_client(world: dict[str, Any]) -> Iterator[Client]:
    # Django logs each refused lookup with its traceback (django.security): thousands of them here.
    security_log = logging.getLogger("django.security.DisallowedModelAdminLookup")
    level = security_log.level
    security_log.setLevel(logging.CRITICAL)
    yield login_verified(Client(), world["admin"])
    security_log.setLevel(level)


def test_every_registered_admin_is_strict_and_declares_what_this_test_expects() -> None:
    reverse("admin:index")  # the URLconf hardens the registry when it loads
    labels = {model._meta.label_lower for model in admin.site._registry}

    assert labels == set(DECLARED), "a new ModelAdmin: declare its filters in DECLARED"
    for model_admin in admin.site._registry.values():
        assert isinstance(model_admin, StrictLookupsMixin)
        check_model_admin(model_admin)


def undeclared_parameters(model: type[Model], *, depth: int) -> Iterator[tuple[str, str]]:
    label = model._meta.label_lower
    for path in field_paths(model, depth=depth):
        for suffix, value in LOOKUPS.items():
            if path + suffix not in DECLARED[label]:
                yield path + suffix, value


def model_with_label(label: str) -> type[Model]:
    return next(model for model in admin.site._registry if model._meta.label_lower == label)


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_every_undeclared_lookup_on_own_fields_is_refused_over_http(
    admin_client: Client, label: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = model_with_label(label)
    refused = 0
    leaked = []
    for parameter, value in undeclared_parameters(model, depth=0):
        response = admin_client.get(changelist(model), {parameter: value})
        if response.status_code == 400:
            refused += 1
        else:
            leaked.append(f"{parameter}: {response.status_code}")

    assert not leaked, f"{label} answered undeclared lookups:\n" + "\n".join(leaked)
    with capsys.disabled():
        print(f"\n{label}: {refused} undeclared lookups on its own fields refused over HTTP (400)")


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_every_undeclared_lookup_two_relations_deep_is_refused(
    world: dict[str, Any], label: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same change list view the URL reaches, called with the platform admin's verified request, so
    # the thousands of paths run in seconds; the HTTP layer in front of it is the test above.
    model = model_with_label(label)
    model_admin = admin.site._registry[model]
    factory = RequestFactory()
    refused = 0
    leaked = []
    for parameter, value in undeclared_parameters(model, depth=2):
        request = factory.get(changelist(model), {parameter: value})
        user: Any = world["admin"]
        user.is_verified = lambda: True  # as django-otp's middleware marks a two-factor session
        request.user = user
        try:
            response = model_admin.changelist_view(request)
        except DisallowedModelAdminLookup:
            refused += 1
        else:
            leaked.append(f"{parameter}: {response.status_code}")

    assert not leaked, f"{label} answered undeclared lookups:\n" + "\n".join(leaked[:40])
    with capsys.disabled():
        print(f"\n{label}: {refused} undeclared lookups two relations deep refused")


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_declared_filters_still_answer(admin_client: Client, world: dict[str, Any], label: str) -> None:
    model = next(model for model in admin.site._registry if model._meta.label_lower == label)
    values = {
        "__id__exact": str(world["participant"].organisation_id),
        "__isnull": "False",
        "status__exact": "active",
        "party__exact": "organisation",
        "sector": "zorg",
        "__gte": "2026-01-01",
        "__lt": "2027-01-01",
    }
    for parameter in DECLARED[label]:
        value = next((v for key, v in values.items() if parameter.endswith(key)), "1")
        response = admin_client.get(changelist(model), {parameter: value})
        assert response.status_code == 200, (parameter, response.status_code)


@pytest.mark.parametrize(
    ("model", "parameter", "right", "wrong"),
    [
        # The TOTP secret read a character at a time, on the device list and through staff relations.
        (TOTPDevice, "key__startswith", "{key}", "zz"),
        (TOTPDevice, "user__totpdevice__key__startswith", "{key}", "zz"),
        (Participant, "organisation__staff__totpdevice__key__startswith", "{key}", "zz"),
        # A staff member's phone number, and a participant's blind index, through the organisation.
        (StaffUser, "phonedevice__number__startswith", "+316", "+319"),
        (Participant, "organisation__participants__email_index__startswith", "eee", "000"),
        # Who answered which week.
        (Organisation, "participants__last_response_week__isnull", "True", "False"),
        (Participant, "last_response_week__gt", "2000-01-01", "2999-01-01"),
        # A backup code.
        (StaticDevice, "token_set__token__startswith", "k3y", "zzz"),
    ],
)
def test_a_matching_and_a_missing_prefix_answer_alike(
    admin_client: Client, world: dict[str, Any], model: type[Model], parameter: str, right: str, wrong: str
) -> None:
    key = TOTPDevice.objects.get(user=world["employer"]).key[:3]

    hit = admin_client.get(changelist(model), {parameter: right.format(key=key)})
    miss = admin_client.get(changelist(model), {parameter: wrong})

    assert hit.status_code == miss.status_code == 400
    assert hit.content == miss.content


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_ordering_reaches_only_the_shown_columns(admin_client: Client, label: str) -> None:
    model, model_admin = next(
        item for item in admin.site._registry.items() if item[0]._meta.label_lower == label
    )
    shown = len(model_admin.list_display)
    for order in [*(str(i) for i in range(shown)), *(f"-{i}" for i in range(shown)), "99", "key", "-7.1"]:
        response = admin_client.get(changelist(model), {"o": order})
        # A column index beyond the list, or a field name, is ignored or refused: never a 500, never a sort
        # by a column the list does not show.
        assert response.status_code in (200, 302, 400), (order, response.status_code)


def test_device_lists_and_pages_show_no_key_number_or_code(
    admin_client: Client, world: dict[str, Any]
) -> None:
    totp = TOTPDevice.objects.get(user=world["employer"])
    phone = world["phone"]
    secrets = [totp.key, phone.key, "612345678", "k3yc0d3x"]
    pages = [
        changelist(TOTPDevice),
        changelist(PhoneDevice),
        changelist(StaticDevice),
        reverse("admin:phonenumber_phonedevice_change", args=[phone.pk]),
        reverse("admin:otp_totp_totpdevice_change", args=[totp.pk]),
        reverse("admin:phonenumber_phonedevice_delete", args=[phone.pk]),
    ]
    for page in pages:
        html = admin_client.get(page).content.decode()
        for secret in secrets:
            assert secret not in html, (page, secret)


def test_a_list_that_would_filter_or_search_a_secret_is_refused_at_start_up() -> None:
    class LeakyDeviceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
        search_fields = ("key",)

    class RelationFilterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
        list_filter = ("organisation__name",)

    class ShowsIndexAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
        list_display = ("id", "email_index")

    for admin_class, model in [
        (LeakyDeviceAdmin, TOTPDevice),
        (RelationFilterAdmin, Participant),
        (ShowsIndexAdmin, Participant),
    ]:
        with pytest.raises(ImproperlyConfigured):
            check_model_admin(admin_class(model, admin.site))


def test_popup_to_field_is_only_the_primary_key(admin_client: Client) -> None:
    assert admin_client.get(changelist(TOTPDevice), {"_to_field": "key"}).status_code == 400
    assert admin_client.get(changelist(TOTPDevice), {"_to_field": "id"}).status_code == 200
