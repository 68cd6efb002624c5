"""Hostile input gets a 4xx (or a redirect), never a 500, and writes nothing.

Every URL pattern of the URLconf (walked as the authorization matrix walks it, so a new endpoint is covered
the day it is added) is posted garbage by every kind of visitor: NUL bytes, very long strings, invalid
UTF-8, control and bidi characters, duplicate and unexpected fields, wrong methods, with and without a CSRF
token, with tokens in the URL both valid and made up. No answer may be a 5xx (the test client re-raises a
view's exception, so a 500 fails with its traceback), and no database row may be written: PostgreSQL's
``pg_stat_xact_user_tables`` counts every row inserted, updated or deleted in the test's transaction, in
each of the three stores, before and after each request.

Two exceptions, each for a reason. The session table: a visit may legitimately start or change a session.
And "button" endpoints, whose whole input is the press of a button by a session entitled to it (consent,
decline, resend, log out, ...): with a valid CSRF token such a post is the act itself, garbage fields or
not. Without a valid token they too must write nothing.

Budget: a sweep of every pattern for every visitor with one fixed hostile request (so every endpoint is
reached, whatever hypothesis draws), then hypothesis (max_examples bounded, no deadline) over the whole
space of visitors, patterns and requests. About a minute in all.
"""

from __future__ import annotations

import datetime as dt
import string
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from participants import session as participant_session
from participants.models import AccountLink, VerificationCode
from participants.references import hour_index
from participants.views import enrolment as enrolment_views
from preventicons.crypto import hash_token, keyed_hash, new_token
from tests.conftest import ALL_DATABASES
from tests.test_authorization_matrix import GROUPS, ROLES, ROUTES, Route, World, build_world, client_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("empty_cache")]

CSRF_SECRET = "k" * 32
# Tables a visit may write whatever it posts: the (sealed) session store.
SESSION_TABLES = {"django_session"}
# Endpoints whose input is the button press itself: with a valid CSRF token, the entitled session's post
# is the act. Everything else must refuse garbage without a write.
BUTTONS = {
    "logout",
    "participants:account-close",
    "participants:account-rejoin",
    "participants:account-stop",  # asks for the codes of a stop
    "participants:account-change-resend",
    "participants:account-stop-resend",
    "participants:account-link-confirm",  # uses the link up and sends its SMS code
    "participants:account-code-resend",
    "participants:enrol",  # asks for the link's SMS code
    "participants:enrol-consent",
    "participants:enrol-decline",
    "participants:enrol-resend",
    "participants:enrol-new-link",
}
# Field names the pages use, so garbage reaches the code that reads them, besides made-up ones.
KNOWN_FIELDS = [
    "value",
    "code",
    "sms_code",
    "email_code",
    "name",
    "email",
    "mobile",
    "paused",
    "consent",
    "channel",
    "organisation",
    "next",
    "language",
    "password",
    "otp_token",
    "weekly_channel",
    "private_email",
    "file",
    "action",
    "_selected_action",
    "challenge_device",
    "wizard_goto_step",
    "login_view-current_step",
    "auth-username",
    "auth-password",
    "token-otp_token",
    "backup-otp_token",
    "setup-number",
    "setup-method",
    "validation-token",
    "phone_create_view-current_step",
]
WRONG_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]

# --- the visitors -------------------------------------------------------------------------------------

VISITORS = (*ROLES, "enrolling", "linking")


def _enrolling_client(world: World) -> Client:
    """A browser that opened the invited colleague's link and entered its SMS code (enrolment's session)."""
    invitation = world.extra["invitation"]
    client = Client(enforce_csrf_checks=True)
    VerificationCode.objects.create(
        participant_ref=str(invitation.participant.pk),
        participant_index=hour_index(invitation.participant.pk, timezone.now()),
        purpose=VerificationCode.Purpose.OPEN_LINK,
        channel=VerificationCode.Channel.SMS,
        code_hash="0" * 64,
        created_at=timezone.now(),
        expires_at=timezone.now() + dt.timedelta(minutes=10),
        verified_at=timezone.now(),
    )
    session = client.session
    session[enrolment_views.SESSION_INVITATION] = str(invitation.pk)
    session[enrolment_views.SESSION_LINK] = keyed_hash("blind_index", "invitation-link", "x")
    session[enrolment_views.SESSION_OPENED] = str(invitation.pk)
    session[enrolment_views.SESSION_INTENT] = "join"
    session.save()
    return client


def _linking_client(world: World) -> Client:
    """A browser that used the participant's e-mailed account link and waits for its SMS code."""
    client = Client(enforce_csrf_checks=True)
    session = client.session
    session[participant_session.SESSION_LINK_STEP] = {
        "participant": str(world.participant.pk),
        "link": keyed_hash("blind_index", "account-link", "x"),
        "at": int(time.time()),
        "code_at": int(time.time()),
        "failures": 0,
    }
    session.save()
    return client


def visitor(role: str, world: World) -> Client:
    if role == "enrolling":
        client = _enrolling_client(world)
    elif role == "linking":
        client = _linking_client(world)
    else:
        plain = client_for(role, world)
        client = Client(enforce_csrf_checks=True)
        client.cookies = plain.cookies
    return client


def hostile_world() -> World:
    world = build_world()
    from participants.models import Invitation

    world.extra["invitation"] = Invitation.objects.get(token_hash=hash_token(world.extra["invitation_token"]))
    token = new_token()
    AccountLink.objects.create(
        participant_ref=str(world.participant.pk),
        token_hash=hash_token(token),
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    world.extra["account_token"] = token
    return world


# --- which URLs, with which arguments -----------------------------------------------------------------


def valid_arguments(route: Route, world: World) -> dict[str, str]:
    """Arguments that open something real: the world's own links and objects."""
    if route.group is not None:
        return dict(route.group.samples)
    values: dict[str, str] = {}
    for name in route.arguments:
        if name == "token":
            if route.route.startswith("i/"):
                values[name] = world.extra["invitation_token"]
            elif route.route.startswith("me/link/"):
                values[name] = world.extra["account_token"]
            else:
                values[name] = world.extra["weekly_token"]
        elif name == "pk":
            values[name] = str(world.backup_phone.pk)
        else:
            values[name] = "0"
    return values


def path_for(route: Route, arguments: dict[str, str]) -> str:
    import re

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda match: arguments[match[1]], route.route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: arguments[match[1]], path)
    return "/" + path.replace("^", "").replace("$", "")


def _routes() -> list[Route]:
    # The admin's many pages answer as one site: every one of them is in the sweep, and hypothesis draws
    # from all of them too.
    return [route for route in ROUTES if route.group is None or route.group is GROUPS.get("admin")]


HOSTILE_ROUTES = _routes()

# --- what counts as a write ---------------------------------------------------------------------------


def writes() -> dict[tuple[str, str], int]:
    """Rows inserted, updated or deleted so far in this transaction, per store and table."""
    counts: dict[tuple[str, str], int] = {}
    for alias in ALL_DATABASES:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables")
            for table, count in cursor.fetchall():
                if table not in SESSION_TABLES:
                    counts[(alias, table)] = int(count)
    return counts


def written(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> list[str]:
    return sorted(
        f"{alias}.{table}"
        for (alias, table), count in after.items()
        if count != before.get((alias, table), 0)
    )


# --- one hostile request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    method: str
    fields: list[tuple[str, bytes]]
    with_csrf: bool
    valid_token: bool
    made_up_token: bytes = b"x" * 43
    multipart: bool = False


def body_of(fields: list[tuple[str, bytes]]) -> bytes:
    # Built by hand: the test client would encode (and so repair) invalid UTF-8.
    return b"&".join(
        quote_from_bytes(name.encode("utf-8", "surrogatepass")).encode()
        + b"="
        + quote_from_bytes(value).encode()
        for name, value in fields
    )


def send(client: Client, route: Route, world: World, hostile: Hostile) -> Any:
    arguments = valid_arguments(route, world)
    if not hostile.valid_token and "token" in arguments:
        arguments["token"] = quote_from_bytes(hostile.made_up_token, safe="")
    path = path_for(route, arguments)
    fields = list(hostile.fields)
    if hostile.with_csrf:
        client.cookies["csrftoken"] = CSRF_SECRET
        fields.append(("csrfmiddlewaretoken", CSRF_SECRET.encode()))
    else:
        client.cookies.pop("csrftoken", None)
    if hostile.multipart and hostile.method == "POST":
        data: dict[str, Any] = {}
        for name, value in fields:
            data.setdefault(name, []).append(value.decode("utf-8", "replace"))
        return client.post(path, data)
    return client.generic(
        hostile.method, path, body_of(fields), content_type="application/x-www-form-urlencoded"
    )


def check(client: Client, route: Route, world: World, hostile: Hostile, role: str) -> None:
    before = writes()
    response = send(client, route, world, hostile)
    after = writes()
    assert response.status_code < 500, f"{role} {hostile.method} {route.key}: {response.status_code}"
    may_write = hostile.with_csrf and route.key in BUTTONS and hostile.method == "POST"
    if not may_write:
        assert not written(before, after), (
            f"{role} {hostile.method} {route.key} wrote {written(before, after)} from garbage"
        )


# --- garbage --------------------------------------------------------------------------------------------

# Each value carries at least one poison that no field accepts: a NUL, a control or bidi character, bytes
# that are not UTF-8, or a length beyond every field's bound.
POISONS = st.sampled_from(
    [b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", "\u202e".encode(), b"\x1b[0m", "\u2028".encode()]
)
text_bytes = st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass"))


@st.composite
def garbage_values(draw: st.DrawFn) -> bytes:
    head = draw(text_bytes)
    poison = draw(POISONS)
    tail = draw(text_bytes)
    value = head + poison + tail
    if draw(st.booleans()):
        value = value * draw(st.integers(min_value=300, max_value=3000))
    return value


field_names = st.one_of(
    st.sampled_from(KNOWN_FIELDS), st.text(alphabet=string.printable, min_size=1, max_size=30)
)


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    names = draw(st.lists(field_names, max_size=8))
    fields = [(name, draw(garbage_values())) for name in names]
    # Duplicates: the same field again, with other garbage.
    for name in draw(st.lists(st.sampled_from(names), max_size=3)) if names else []:
        fields.append((name, draw(garbage_values())))
    return Hostile(
        method=draw(st.sampled_from(["POST"] * 4 + WRONG_METHODS)),
        fields=fields,
        with_csrf=draw(st.booleans()),
        valid_token=draw(st.booleans()),
        made_up_token=draw(st.one_of(st.binary(min_size=1, max_size=80), garbage_values())),
        multipart=draw(st.booleans()),
    )


# The sweep's one request: every known field poisoned, some twice, with a valid CSRF token (so it gets past
# the CSRF check to the code that reads the fields) and the world's valid tokens in the URL. Made-up tokens,
# missing CSRF tokens and wrong methods are hypothesis's to draw.
FIXED = Hostile(
    "POST",
    [(name, b"\x00" + "\u202e".encode() + b"\xff" * 3) for name in KNOWN_FIELDS]
    + [("value", b"x" * 5000), ("value", b"\xc3\x28"), ("paused", b"1\x00"), ("code", b"12345\xff")],
    with_csrf=True,
    valid_token=True,
)

# --- the tests ------------------------------------------------------------------------------------------


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_every_endpoint_refuses_a_fixed_hostile_request_from_every_visitor() -> None:
    world = hostile_world()
    for role in VISITORS:
        for route in HOSTILE_ROUTES:
            check(visitor(role, world), route, world, FIXED, role)


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_generated_garbage_never_gets_a_500_or_writes() -> None:
    world = hostile_world()
    clients = {role: visitor(role, world) for role in VISITORS}

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        role=st.sampled_from(VISITORS),
        route=st.sampled_from(HOSTILE_ROUTES),
        hostile=hostile_requests(),
    )
    def one(role: str, route: Route, hostile: Hostile) -> None:
        check(clients[role], route, world, hostile, role)

    one()


@pytest.mark.django_db(databases=ALL_DATABASES)
@pytest.mark.parametrize("organisation", ["\u0663", "9" * 30, "1\x00", "-1"])
def test_an_organisation_that_is_no_key_is_refused_before_any_lookup(organisation: str) -> None:
    # "٣".isdigit() holds and int() reads it; thirty nines overflow the key column: both once reached the
    # database (a lookup at best, a 500 at worst).
    world = hostile_world()
    admin = visitor("admin", world)
    admin.cookies["csrftoken"] = CSRF_SECRET
    before = writes()

    response = admin.post(
        "/staff/invitations/send/", {"organisation": organisation, "csrfmiddlewaretoken": CSRF_SECRET}
    )

    assert response.status_code == 400
    assert not written(before, writes())
