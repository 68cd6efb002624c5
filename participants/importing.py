"""The employer's address list: reading a spreadsheet's CSV export, and importing it all or nothing.

A list with one bad row imports no row, and the refusal names every bad row with its line number. A list
imported again updates the people it already holds (found through the keyed blind indexes, never through
plaintext) instead of adding them twice, and recognises people who stopped or declined by the keyed hashes
they left (participants.invitations), so they are never added, or invited, again.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connections, models, router, transaction
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from participants import contact, queued
from participants.agreements import require_signed_agreement
from participants.invitations import departed_owners, end_schedules_not_listed, listed_hashes
from participants.listpreview import remember_imported_list
from participants.models import (
    DepartedContact,
    Department,
    FormerListedContact,
    Organisation,
    Participant,
    StaffUser,
    index_salt,
)
from preventicons.crypto import blind_index_email, blind_index_phone
from preventicons.fields import ContactHashField, EncryptedTextField, look_alike_hash
from preventicons.roles import check_organisation_access

logger = logging.getLogger(__name__)

MAX_ROWS = 50_000
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254  # RFC 5321: the longest address a mail server must accept.
MAX_DEPARTMENT_LENGTH = Department._meta.get_field("name").max_length or 200
_HEADER_NOISE = re.compile(r"[\s_\-.]+")
_BATCH = 1000

# Column names a spreadsheet may carry, compared without case, spaces, hyphens, dots and underscores.
HEADER_ALIASES: dict[str, frozenset[str]] = {
    "name": frozenset({"naam", "name", "volledigenaam", "fullname"}),
    "email": frozenset({"email", "emailadres", "emailaddress"}),
    "mobile": frozenset(
        {"mobiel", "mobile", "telefoon", "mobielnummer", "mobilenumber", "telefoonnummer", "phone"}
    ),
    "department": frozenset({"afdeling", "department"}),
}
COLUMNS = tuple(HEADER_ALIASES)

# Every kind of bad file or row, with what the user reads about it. Kept in one place so each has its own
# message and the tests can walk them all.
MESSAGES: dict[str, Promise] = {
    # the file as a whole
    "file_too_large": _("The file is larger than %(max_mb)d MB. Split the list or remove unused columns."),
    "file_empty": _("The file is empty."),
    "file_no_rows": _("The file has a header line but no employees."),
    "file_too_many_rows": _("The file has more than %(max)d employees; split it into smaller lists."),
    "file_workbook": _(
        "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, choose "
        "“Save as” and the format “CSV (comma or semicolon delimited)”."
    ),
    "file_not_text": _(
        "This file is not plain text (it may be UTF-16 “Unicode text” or a binary file). "
        "Save it as “CSV UTF-8” and try again."
    ),
    "file_undecodable": _(
        "This line holds characters that are neither UTF-8 nor Windows-1252. Save the file as "
        "“CSV UTF-8” and try again."
    ),
    "file_bad_quotes": _(
        "A quotation mark on this line is not closed or is followed by other text, so the rest of the "
        "file cannot be read reliably. Check the quotation marks around values."
    ),
    "file_value_too_large": _(
        "A value on this line is far too long, so the rest of the file cannot be read reliably. "
        "Is a quotation mark missing?"
    ),
    # the header line
    "header_missing_name": _("The header line has no column for the name (accepted: %(names)s)."),
    "header_missing_email": _("The header line has no column for the e-mail address (accepted: %(names)s)."),
    "header_missing_mobile": _("The header line has no column for the mobile number (accepted: %(names)s)."),
    "header_missing_department": _("The header line has no column for the department (accepted: %(names)s)."),
    "header_unknown_column": _(
        "The header line has a column “%(column)s” that we do not know. Use only the columns "
        "naam, e-mail, mobiel and afdeling (or name, email, mobile and department)."
    ),
    "header_empty_column": _("The header line has a column without a name (column %(position)d)."),
    "header_duplicate_column": _("The header line has column “%(column)s” twice (also as “%(first)s”)."),
    # the shape of a row
    "row_too_many_fields": _(
        "This row has %(found)d fields but the header has %(expected)d. Is there a separator inside a "
        "value? Then put that value between double quotes."
    ),
    "row_too_few_fields": _("This row has only %(found)d of the %(expected)d fields of the header."),
    # name
    "name_missing": _("The name is missing."),
    "name_too_long": _("The name is longer than %(max)d characters."),
    "name_control_characters": _(
        "The name contains invisible control characters (such as a tab or line break)."
    ),
    "name_formula": _(
        "The name starts with “%(char)s”. A spreadsheet would run it as a formula, so it is refused."
    ),
    # e-mail
    "email_missing": _("The e-mail address is missing."),
    "email_too_long": _("The e-mail address is longer than %(max)d characters."),
    "email_invalid": _("The e-mail address is not valid."),
    "email_duplicate": _("The same e-mail address is already on line %(first_line)d."),
    # mobile
    "mobile_missing": _("The mobile number is missing."),
    "mobile_unparseable": _("The mobile number cannot be read as a phone number."),
    "mobile_invalid": _("The mobile number does not exist (wrong number of digits or an unknown prefix)."),
    "mobile_landline": _("This is a landline number; text messages cannot reach it. Give a mobile number."),
    "mobile_not_mobile": _(
        "This is a service number (such as 0800, 0900 or 085), not a mobile number; "
        "text messages cannot reach it."
    ),
    "mobile_country": _("This mobile number is not from a country we send text messages to (%(countries)s)."),
    "mobile_duplicate": _("The same mobile number is already on line %(first_line)d."),
    # department
    "department_missing": _("The department is missing."),
    "department_too_long": _("The department is longer than %(max)d characters."),
    "department_control_characters": _(
        "The department contains invisible control characters (such as a tab or line break)."
    ),
    "department_formula": _(
        "The department starts with “%(char)s”. A spreadsheet would run it as a formula, so it is refused."
    ),
    # against the people already on the organisation's list
    "conflict_email_and_mobile": _(
        "The e-mail address belongs to one person already on your list and the mobile number to another. "
        "Correct this row, or change the other person first."
    ),
    "conflict_same_person": _(
        "This row and line %(first_line)d both match the same person already on your list "
        "(by e-mail address or mobile number)."
    ),
}


@dataclass(frozen=True)
class Row:
    """One employee as read from the list: values cleaned, the mobile number in E.164."""

    line: int
    name: str
    email: str
    mobile: str
    department: str


@dataclass(frozen=True)
class RowError:
    """Why a line (or, with line None, the whole file) cannot be imported, in the user's language."""

    line: int | None
    reason: str
    code: str


class AddressListInvalid(Exception):
    """The list cannot be imported; ``errors`` names every bad row, in line order."""

    def __init__(self, errors: Iterable[RowError]) -> None:
        # By line; within a line in column order (the sort is stable).
        self.errors = sorted(errors, key=lambda error: error.line or 0)
        super().__init__(f"{len(self.errors)} problem(s) in the address list")


@dataclass(frozen=True)
class ImportResult:
    """What an import changed, in counts only."""

    created: int
    updated: int
    unchanged: int
    unlisted: int
    relisted: int


def _error(line: int | None, code: str, **params: Any) -> RowError:
    message = MESSAGES[code]
    return RowError(line=line, reason=str(message % params) if params else str(message), code=code)


def max_file_bytes() -> int:
    return int(settings.ADDRESS_LIST_MAX_BYTES)


def file_too_large_error() -> RowError:
    """The refusal of a file over the size cap (the upload page gives it too, for a file it never read)."""
    return _error(None, "file_too_large", max_mb=max_file_bytes() // (1024 * 1024))


# --- reading the file ---------------------------------------------------------------------------


def _decode(data: bytes) -> str | RowError:
    """The file's text: UTF-8 (with or without BOM) as spreadsheets export it, else Windows-1252."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):  # .xlsx (zip) and .xls (OLE) workbooks
        return _error(None, "file_workbook")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data:
        return _error(None, "file_not_text")
    has_bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if has_bom else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if has_bom:
            # A BOM promises UTF-8: a bad byte after it is damage, not another encoding.
            return _error(body[: exc.start].count(b"\n") + 1, "file_undecodable")
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError as exc:
        # The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D).
        return _error(body[: exc.start].count(b"\n") + 1, "file_undecodable")


def _sniff_delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


class _BrokenQuoting(Exception):
    def __init__(self, line: int, code: str) -> None:
        self.line = line
        self.code = code


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on; _BrokenQuoting names the line where reading failed."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    previous_end = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module refuses a value over csv.field_size_limit() (128 KiB); no cell is that long.
            code = "file_value_too_large" if "field limit" in str(exc) else "file_bad_quotes"
            raise _BrokenQuoting(previous_end + 1, code) from None
        yield previous_end + 1, record
        previous_end = reader.line_num


def _is_blank(record: list[str]) -> bool:
    # Spreadsheets write an empty row as ";;;", not as an empty line.
    return all(not cell.strip() for cell in record)


def _header_key(cell: str) -> str:
    return _HEADER_NOISE.sub("", cell).casefold()


def _read_header(line: int, record: list[str]) -> tuple[dict[str, int], list[RowError]]:
    positions: dict[str, int] = {}
    errors: list[RowError] = []
    written: dict[str, str] = {}
    for index, cell in enumerate(record):
        key = _header_key(cell)
        if not key:
            errors.append(_error(line, "header_empty_column", position=index + 1))
            continue
        column = next((name for name, aliases in HEADER_ALIASES.items() if key in aliases), None)
        if column is None:
            errors.append(_error(line, "header_unknown_column", column=cell.strip()[:50]))
        elif column in positions:
            errors.append(_error(line, "header_duplicate_column", column=cell.strip(), first=written[column]))
        else:
            positions[column] = index
            written[column] = cell.strip()
    for column in COLUMNS:
        if column not in positions:
            names = ", ".join(sorted(HEADER_ALIASES[column]))
            errors.append(_error(line, f"header_missing_{column}", names=names))
    return positions, errors


def _has_control_characters(value: str) -> bool:
    return contact.CONTROL_CHARACTERS.search(value) is not None


def _clean_text(line: int, raw: str, prefix: str, max_length: int) -> tuple[str | None, RowError | None]:
    # The same checks as a name typed at enrolment or in the account (participants.contact).
    try:
        return contact.check_text(raw, max_length=max_length), None
    except contact.TextRefused as refused:
        if refused.code == "too_long":
            return None, _error(line, f"{prefix}_too_long", max=max_length)
        if refused.code == "formula":
            return None, _error(line, f"{prefix}_formula", char=refused.char)
        return None, _error(line, f"{prefix}_{refused.code}")


_email_validator = EmailValidator(allowlist=[])


def _clean_email(line: int, raw: str) -> tuple[str | None, RowError | None]:
    value = raw.strip()
    if not value:
        return None, _error(line, "email_missing")
    if len(value) > MAX_EMAIL_LENGTH:
        return None, _error(line, "email_too_long", max=MAX_EMAIL_LENGTH)
    if _has_control_characters(value):
        return None, _error(line, "email_invalid")
    try:
        _email_validator(value)
    except ValidationError:
        return None, _error(line, "email_invalid")
    return value, None


def _clean_mobile(line: int, raw: str) -> tuple[str | None, RowError | None]:
    # The one normaliser of enrolment and the account too (participants.contact).
    try:
        return contact.normalise_mobile(raw), None
    except contact.MobileRefused as refused:
        if refused.code == "country":
            return None, _error(line, "mobile_country", countries=contact.countries_text())
        return None, _error(line, f"mobile_{refused.code}")


@dataclass
class _Parsed:
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _parse(data: bytes) -> _Parsed:
    parsed = _Parsed()
    limit = max_file_bytes()
    if len(data) > limit:
        parsed.errors.append(file_too_large_error())
        return parsed
    text = _decode(data)
    if isinstance(text, RowError):
        parsed.errors.append(text)
        return parsed
    if not text.strip():
        parsed.errors.append(_error(None, "file_empty"))
        return parsed
    lines = text.splitlines()
    first = next(line for line in lines if line.strip())
    delimiter = _sniff_delimiter(first)
    # Excel writes a "sep=;" line before the header when asked to; it is an instruction, not data.
    hint = re.fullmatch(r"\s*sep=(.)\s*", first)
    if hint:
        delimiter = hint.group(1)
        text = text.replace(first, "", 1)

    # First only split the records, so a list over the cap is refused before any row is checked.
    records: list[tuple[int, list[str]]] = []
    broken_at: int | None = None
    broken_code = "file_bad_quotes"
    try:
        for line, record in _records(text, delimiter):
            if _is_blank(record):
                continue
            records.append((line, record))
            if len(records) > MAX_ROWS + 1:
                parsed.errors.append(_error(None, "file_too_many_rows", max=MAX_ROWS))
                return parsed
    except _BrokenQuoting as broken:
        broken_at, broken_code = broken.line, broken.code
    if not records:
        # Only separators (";;;" lines) are a spreadsheet's empty sheet.
        parsed.errors.append(_error(broken_at, broken_code) if broken_at else _error(None, "file_empty"))
        return parsed
    header_line, header_record = records[0]
    header, header_errors = _read_header(header_line, header_record)
    if header_errors:
        parsed.errors.extend(header_errors)
        return parsed
    width = len(header_record)
    seen_emails: dict[str, int] = {}
    seen_mobiles: dict[str, int] = {}
    for line, record in records[1:]:
        if len(record) > width:
            parsed.errors.append(_error(line, "row_too_many_fields", found=len(record), expected=width))
        elif len(record) < width:
            parsed.errors.append(_error(line, "row_too_few_fields", found=len(record), expected=width))
        else:
            row = _clean_row(line, record, header, seen_emails, seen_mobiles, parsed.errors)
            if row is not None:
                parsed.rows.append(row)
    if broken_at is not None:
        # What follows cannot be told apart into rows: nothing after it is checked.
        parsed.errors.append(_error(broken_at, broken_code))
    elif len(records) == 1:
        parsed.errors.append(_error(None, "file_no_rows"))
    return parsed


def _clean_row(
    line: int,
    record: list[str],
    header: dict[str, int],
    seen_emails: dict[str, int],
    seen_mobiles: dict[str, int],
    errors: list[RowError],
) -> Row | None:
    name, name_error = _clean_text(line, record[header["name"]], "name", MAX_NAME_LENGTH)
    email, email_error = _clean_email(line, record[header["email"]])
    mobile, mobile_error = _clean_mobile(line, record[header["mobile"]])
    department, department_error = _clean_text(
        line, record[header["department"]], "department", MAX_DEPARTMENT_LENGTH
    )
    row_errors = [error for error in (name_error, email_error, mobile_error, department_error) if error]
    if email is not None:
        key = email.lower()
        if key in seen_emails:
            row_errors.append(_error(line, "email_duplicate", first_line=seen_emails[key]))
        else:
            seen_emails[key] = line
    if mobile is not None:
        if mobile in seen_mobiles:
            row_errors.append(_error(line, "mobile_duplicate", first_line=seen_mobiles[mobile]))
        else:
            seen_mobiles[mobile] = line
    if row_errors:
        errors.extend(row_errors)
        return None
    assert name is not None and email is not None and mobile is not None and department is not None
    # One spelling per department: "IT " and "IT" are the same department.
    return Row(line=line, name=name, email=email, mobile=mobile, department=" ".join(department.split()))


def parse_address_list(data: bytes) -> list[Row]:
    """Every row of a valid list, or AddressListInvalid naming every bad row."""
    parsed = _parse(data)
    if parsed.errors:
        raise AddressListInvalid(parsed.errors)
    return parsed.rows


# --- importing ----------------------------------------------------------------------------------


def import_address_list(
    *, organisation: Organisation, data: bytes, full_list: bool, by: StaffUser
) -> ImportResult:
    """Import the list all or nothing: every row created or updated, or AddressListInvalid and no write.

    With ``full_list`` the list is the organisation's whole staff: listed participants missing from it are
    unlisted (no more messages), and an unlisted one who is on it again is listed again.
    """
    # A platform admin imports for any organisation, an employer only for their own.
    check_organisation_access(by, organisation)
    # Reading the list is already processing the employees' personal data.
    require_signed_agreement(organisation)
    parsed = _parse(data)
    if not parsed.rows and parsed.errors:
        raise AddressListInvalid(parsed.errors)
    with transaction.atomic():
        # Two imports for one organisation at once would both decide "new" for the same person. NO KEY: the
        # employer starts an import at will, and FOR UPDATE held every first tap of its staff (a score's
        # foreign key check) for the whole import, while a repeated tap answered (participants.requestqueue).
        Organisation.objects.select_for_update(no_key=True).filter(pk=organisation.pk).first()
        result = _apply(organisation, parsed, full_list)
        # What the next preview compares with: this list as the employer wrote it (participants.listpreview).
        remember_imported_list(organisation=organisation, rows=parsed.rows, full_list=full_list)
    logger.info(
        "address list imported for organisation %s by staff %s: %d created, %d updated, %d unchanged, "
        "%d unlisted, %d relisted",
        organisation.pk,
        by.pk,
        result.created,
        result.updated,
        result.unchanged,
        result.unlisted,
        result.relisted,
    )
    return result


def _apply(organisation: Organisation, parsed: _Parsed, full_list: bool) -> ImportResult:
    today = timezone.localdate()
    # Read under the caller's lock on the organisation, which a request batch renewing it waits for.
    salt = index_salt(organisation.pk)
    # A stopped (or anonymised) participant is matched like anyone else, by the listed hashes their row keeps
    # (Participant.shredded): a list that names them again finds their row, changes what it would change on
    # any enrolled person's (the department, the listed hashes, listed again or not) and invites nobody, so
    # neither the employer's counts nor the rows an import rewrites tell who stopped. Their contact data and
    # blind indexes are look-alikes, and the list never writes contact data on a row that is no longer
    # invited (_update_fields). Should a stopped row still hold a real blind index (a row erased before the
    # look-alikes), it must neither link nor block a new participant: only a value this list would write is
    # replaced, so an import rewrites no stopped row that holds look-alikes.
    # The status is sealed (participants.models): decided in Python, from the rows read here.
    existing = list(Participant.objects.filter(organisation=organisation))
    # Whose joining waits for the request batch (requestqueue.confirm_enrolment): their row still reads
    # invited, but what they joined with is theirs, as an enrolled person's is (_update_fields). Read under
    # the lock on the organisation, which confirm_enrolment takes too: one queued before this import is here.
    joining = queued.pending_participants(queued.ENROLMENT)
    row_hashes = {
        row.line: listed_hashes(organisation_id=organisation.pk, email=row.email, mobile=row.mobile)
        for row in parsed.rows
    }
    written = {blind_index_email(row.email, salt) for row in parsed.rows}
    written |= {blind_index_phone(row.mobile, salt) for row in parsed.rows}
    for participant in existing:
        if participant.status != Participant.Status.STOPPED:
            continue
        clashing = [name for name in _BLIND_INDEXES if getattr(participant, name) in written]
        if clashing:
            Participant.objects.filter(pk=participant.pk).update(
                **{name: look_alike_hash() for name in clashing}
            )
            for name in clashing:
                setattr(participant, name, None)
    # Rows are matched only against how the employer listed each person (the listed hashes), never against
    # the contacts a participant uses now: a participant who moved to a private address and number is the
    # same person to the list, and a row carrying their new private number is nobody to it. Someone who
    # stopped or declined before review 4 is matched by the same two hashes, kept together (DepartedContact):
    # every answer (a refusal's words, who is new and invited, the counts) is the same whatever they did.
    wanted = {value for pair in row_hashes.values() for value in pair if value}
    departed = departed_owners(organisation_id=organisation.pk, hashes=wanted)
    owners_by_email: dict[str, Participant | DepartedContact] = {}
    owners_by_mobile: dict[str, Participant | DepartedContact] = {}
    for participant in existing:
        if participant.listed_email_hash:
            owners_by_email[participant.listed_email_hash] = participant
        if participant.listed_mobile_hash:
            owners_by_mobile[participant.listed_mobile_hash] = participant
    # A departed record that is one person with a live participant row (see below).
    paired_record: dict[Any, DepartedContact] = {}
    for record in departed:
        # Declines used to write their record at once, leaving it beside the row until the night erased them
        # (a decline now leaves that to the night, enrolment.decline_participation): such a record and the row
        # are one person, also when a list changed one of their contacts in between. Both hashes of the
        # record then name the participant, as the record alone will after the night. Only rows a decline
        # wrote before that change, for at most one night, can still meet this.
        owner: Participant | DepartedContact = (
            owners_by_email.get(record.email_hash or "")
            or owners_by_mobile.get(record.mobile_hash or "")
            or record
        )
        if record.email_hash:
            owners_by_email.setdefault(record.email_hash, owner)
        if record.mobile_hash:
            owners_by_mobile.setdefault(record.mobile_hash, owner)
        if isinstance(owner, Participant) and (record.email_hash, record.mobile_hash) == (
            owner.listed_email_hash,
            owner.listed_mobile_hash,
        ):
            paired_record[owner.pk] = record

    errors = list(parsed.errors)
    matches: list[tuple[Row, Participant | DepartedContact | None]] = []
    claimed: dict[Any, int] = {}
    for row in parsed.rows:
        email_hash, mobile_hash = row_hashes[row.line]
        by_row_email = owners_by_email.get(email_hash or "")
        by_row_mobile = owners_by_mobile.get(mobile_hash or "")
        if (
            by_row_email is not None
            and by_row_mobile is not None
            and _key(by_row_email) != _key(by_row_mobile)
        ):
            errors.append(_error(row.line, "conflict_email_and_mobile"))
            continue
        target = by_row_email or by_row_mobile
        if target is not None:
            if _key(target) in claimed:
                errors.append(_error(row.line, "conflict_same_person", first_line=claimed[_key(target)]))
                continue
            claimed[_key(target)] = row.line
        matches.append((row, target))
    if errors:
        raise AddressListInvalid(errors)

    departments = _departments_for(organisation, [row.department for row in parsed.rows])
    # The blind indexes the participants hold now. A new or updated row's contact that a participant already
    # uses as their own (corrected) contact is stored without its index: matching it, or refusing the row,
    # would tell the employer that someone moved to that address or number, so took part.
    held_emails = {p.email_index for p in existing if p.email_index}
    held_mobiles = {p.mobile_index for p in existing if p.mobile_index}
    created: list[Participant] = []
    changed: list[tuple[Participant, list[str]]] = []
    departed_changed: list[DepartedContact] = []
    unchanged = relisted = 0
    former: set[str] = set()
    for row, target in matches:
        department = departments[row.department.casefold()]
        email_hash, mobile_hash = row_hashes[row.line]
        if isinstance(target, DepartedContact):
            # Someone who left: already on the list. It creates nobody, so no invitation, and counts as
            # unchanged; what the list now says of them is kept as it would be on their participant row.
            former.update(_given_up((target.email_hash, target.mobile_hash), (email_hash, mobile_hash)))
            if (target.email_hash, target.mobile_hash) != (email_hash, mobile_hash):
                target.email_hash, target.mobile_hash = email_hash, mobile_hash
                departed_changed.append(target)
            unchanged += 1
            continue
        email_index = blind_index_email(row.email, salt)
        mobile_index = blind_index_phone(row.mobile, salt)
        if target is None:
            person = Participant(
                organisation=organisation,
                department=department,
                name=row.name,
                listed_email_hash=email_hash,
                listed_mobile_hash=mobile_hash,
            )
            person.set_email(row.email, indexed=email_index not in held_emails, salt=salt)
            person.set_mobile(row.mobile, indexed=mobile_index not in held_mobiles, salt=salt)
            created.append(person)
            held_emails.add(email_index)
            held_mobiles.add(mobile_index)
            continue
        fields = _update_fields(
            target,
            row,
            email_index,
            mobile_index,
            department,
            held_emails,
            held_mobiles,
            salt=salt,
            joining=str(target.pk) in joining,
        )
        listed_fields = []
        # What it listed them under before, whatever they did (FormerListedContact).
        former.update(
            _given_up((target.listed_email_hash, target.listed_mobile_hash), (email_hash, mobile_hash))
        )
        if (target.listed_email_hash, target.listed_mobile_hash) != (email_hash, mobile_hash):
            target.listed_email_hash, target.listed_mobile_hash = email_hash, mobile_hash
            listed_fields = ["listed_email_hash", "listed_mobile_hash"]
            # Their record follows, as it would had the night already made it the only one: a hash the list
            # gave up must not still name them (a newcomer listed under it would be taken for them).
            paired = paired_record.get(target.pk)
            if paired is not None:
                paired.email_hash, paired.mobile_hash = email_hash, mobile_hash
                departed_changed.append(paired)
        if not target.is_listed:
            target.is_listed = True
            target.unlisted_on = None
            fields += ["is_listed", "unlisted_on"]
            relisted += 1
        if fields or listed_fields:
            changed.append((target, fields + listed_fields))
        else:
            unchanged += 1
    # Hashes move between people only through the list itself (one person's old number now another's): free
    # them first, so the unique constraints never see a hash twice in between.
    _free_listed_hashes(organisation, changed, departed_changed)
    # Stored in a random order, not the file's: a table lies in about the order its rows were inserted, and
    # the employer who wrote the file could otherwise read row by row which person each one is.
    secrets.SystemRandom().shuffle(created)
    # bulk_create runs each field's pre_save, so every value is sealed to its own (random, preset) row id.
    Participant.objects.bulk_create(created, batch_size=_BATCH)
    _write_changes(changed)
    for record in departed_changed:
        record.save(update_fields=["email_hash", "mobile_hash"])
    # Every address and number a list gave up for its person keeps answering as it answered while listed (the
    # account-link form's e-mail, a colleague's refusal): had only the participant who kept it as their own
    # still counted, the employer would read who took part in that old mailbox or refusal (review 11).
    FormerListedContact.objects.bulk_create(
        [FormerListedContact(organisation=organisation, listed_hash=value) for value in sorted(former)],
        batch_size=_BATCH,
        ignore_conflicts=True,
    )

    unlisted = 0
    if full_list:
        missing = [p.pk for p in _not_named(existing, claimed)]
        for start in range(0, len(missing), _BATCH):
            unlisted += Participant.objects.filter(pk__in=missing[start : start + _BATCH]).update(
                is_listed=False, unlisted_on=today
            )
        # Whoever left before review 4 has no row left to unlist (only a DepartedContact); their invitation
        # schedule ends like anyone else's would.
        end_schedules_not_listed(organisation_id=organisation.pk, listed_hashes=wanted)
    updated = sum(
        1
        for _participant, fields in changed
        if set(fields) - {"is_listed", "unlisted_on", "listed_email_hash", "listed_mobile_hash"}
    )
    return ImportResult(
        created=len(created),
        updated=updated,
        unchanged=unchanged + (len(changed) - updated),
        unlisted=unlisted,
        relisted=relisted,
    )


# The blind indexes of the contacts a participant row holds now (participants.models.ContactHashField).
_BLIND_INDEXES = ("email_index", "mobile_index")


def _not_named(existing: list[Participant], claimed: dict[Any, int]) -> list[Participant]:
    """The listed rows a full list no longer names, to be unlisted.

    A row stopped before review 4 holds look-alike listed hashes (its own went to a DepartedContact), so the
    list meets its person through that record, never through the row, and nothing says which row a record
    came from. Unlisting every such row would unlist people the list still names, which the employer would
    read in the import's counts (review 7). So as many of the unnamed stopped rows stay listed as the list
    named such records, chosen at random among them: the counts come out as if each record had found its
    row, though not always the right one (a department's listed count may be off by those rows).
    """
    unnamed = [p for p in existing if p.is_listed and _key(p) not in claimed]
    records = sum(1 for kind, _pk in claimed if kind == DepartedContact.__name__)
    if not records:
        return unnamed
    stopped = [p for p in unnamed if p.status == Participant.Status.STOPPED]
    secrets.SystemRandom().shuffle(stopped)
    kept = {p.pk for p in stopped[:records]}
    return [p for p in unnamed if p.pk not in kept]


def _given_up(before: tuple[str | None, str | None], after: tuple[str | None, str | None]) -> list[str]:
    """The listed hashes (e-mail, mobile) a list replaces by others."""
    return [old for old, new in zip(before, after, strict=True) if old and old != new]


def _key(owner: Participant | DepartedContact) -> tuple[str, Any]:
    return (type(owner).__name__, owner.pk)


def _free_listed_hashes(
    organisation: Organisation,
    changed: list[tuple[Participant, list[str]]],
    departed_changed: list[DepartedContact],
) -> None:
    moving = [participant.pk for participant, fields in changed if "listed_email_hash" in fields]
    # NULL only in between: _write_changes writes each row's new hashes in this same transaction.
    for start in range(0, len(moving), _BATCH):
        Participant.objects.filter(pk__in=moving[start : start + _BATCH]).update(
            listed_email_hash=None, listed_mobile_hash=None
        )
    for record in departed_changed:
        DepartedContact.objects.filter(pk=record.pk).update(email_hash=None, mobile_hash=None)


# Values that many changed rows share: one UPDATE per distinct value instead of a CASE per row.
_SHARED_VALUE_FIELDS = frozenset({"department", "is_listed", "unlisted_on"})


def _write_changes(changed: list[tuple[Participant, list[str]]]) -> None:
    """Write the changed fields in a few UPDATE statements, each sealed value bound to its own row.

    Not bulk_update(): it reads the attributes back in plaintext and skips pre_save, and the sealed fields
    refuse plaintext without its row. So each value is sealed here through the field's own pre_save (bound
    to the row's id) and the ciphertexts go in one CASE per field and batch.
    """
    shared: dict[tuple[str, Any], list[Any]] = {}
    per_row: dict[tuple[str, ...], list[Participant]] = {}
    for participant, names in changed:
        for name in names:
            if name in _SHARED_VALUE_FIELDS:
                attname = _field(name).attname
                shared.setdefault((attname, getattr(participant, attname)), []).append(participant.pk)
        own = tuple(name for name in names if name not in _SHARED_VALUE_FIELDS)
        if own:
            per_row.setdefault(own, []).append(participant)
    for (attname, value), ids in shared.items():
        for start in range(0, len(ids), _BATCH):
            Participant.objects.filter(pk__in=ids[start : start + _BATCH]).update(**{attname: value})

    connection = connections[router.db_for_write(Participant)]
    pk_field = _field("id")
    pk_column = connection.ops.quote_name(pk_field.attname)
    for fields, participants in per_row.items():
        model_fields = [_field(name) for name in fields]
        for start in range(0, len(participants), _BATCH):
            batch = participants[start : start + _BATCH]
            ids = [pk_field.get_db_prep_value(participant.pk, connection) for participant in batch]
            updates: dict[str, Any] = {}
            for model_field in model_fields:
                # One plain "CASE id WHEN ... THEN ..." with parameters: the ORM's Case(When(pk=...)) costs a
                # resolved expression per row, about as slow as a save() per row.
                params: list[Any] = []
                for row_id, participant in zip(ids, batch, strict=True):
                    params += [
                        row_id,
                        model_field.get_db_prep_save(_db_value(participant, model_field), connection),
                    ]
                # Only the quoted primary-key column name is interpolated; every value is a parameter.
                case: Any = RawSQL(  # noqa: S611  # nosec B611  # a fixed CASE; the values are bound parameters
                    f"CASE {pk_column} {' '.join(['WHEN %s THEN %s'] * len(batch))} END",
                    params,
                    output_field=model_field,
                )
                if connection.features.requires_casted_case_in_updates:
                    # As bulk_update does: PostgreSQL types the CASE as text unless told otherwise.
                    case = Cast(case, output_field=model_field)
                updates[model_field.attname] = case
            Participant.objects.filter(pk__in=[participant.pk for participant in batch]).update(**updates)


def _field(name: str) -> models.Field:
    model_field = Participant._meta.get_field(name)
    assert isinstance(model_field, models.Field)
    return model_field


def _db_value(participant: Participant, model_field: models.Field) -> Any:
    # A hash left out gets its look-alike there (ContactHashField), as a save() would give it.
    if isinstance(model_field, EncryptedTextField | ContactHashField):
        return model_field.pre_save(participant, add=False)
    return getattr(participant, model_field.attname)


# Whose name, address and number the list may still change: only people who never verified them. Once
# enrolled, they are the participant's own, proven by a code to each (and corrected only the same way). Were
# the list to overwrite them, an employer could import its own number for a person matched by e-mail, then
# its own address for the same person matched by that number, and so receive both codes to their account.
# Nor once they joined and the request batch has yet to make it so (``joining``): a list imported in those
# minutes made them a participant under the employer's number, which they never saw (review 10).
_LIST_OWNS_CONTACT_DATA = frozenset({Participant.Status.INVITED, Participant.Status.DECLINED})


def _update_fields(
    participant: Participant,
    row: Row,
    email_index: str,
    mobile_index: str,
    department: Department,
    held_emails: set[str],
    held_mobiles: set[str],
    *,
    salt: str,
    joining: bool = False,
) -> list[str]:
    """Set what the row changes on a matched participant; the names of the fields that changed. ``joining``:
    their enrolment waits for the request batch."""
    fields: list[str] = []
    if participant.department_id != department.pk:
        participant.department = department
        fields.append("department")
    if participant.status not in _LIST_OWNS_CONTACT_DATA or joining:
        return fields
    if participant.name != row.name:
        participant.name = row.name
        fields.append("name")
    if participant.email_index != email_index or participant.email != row.email:
        # Without its index when another participant holds it as their own (see _apply).
        taken = email_index in held_emails and email_index != participant.email_index
        fields += participant.set_email(row.email, indexed=not taken, salt=salt)
        held_emails.add(email_index)
    if participant.mobile_index != mobile_index or participant.mobile != row.mobile:
        taken = mobile_index in held_mobiles and mobile_index != participant.mobile_index
        fields += participant.set_mobile(row.mobile, indexed=not taken, salt=salt)
        held_mobiles.add(mobile_index)
    return fields


def _departments_for(organisation: Organisation, names: list[str]) -> dict[str, Department]:
    """The organisation's department for each name (by casefold), created as first written when new.

    Names match without regard to case ("it" is the existing "IT"), so a retyped list does not split a
    department's reports in two.
    """
    written = set(names)
    known: dict[str, Department] = {}
    for department in Department.objects.filter(organisation=organisation):
        known.setdefault(department.name.casefold(), department)
        if department.name in written:
            known[department.name.casefold()] = department
    missing: dict[str, Department] = {}
    for name in names:
        key = name.casefold()
        if key not in known and key not in missing:
            missing[key] = Department(organisation=organisation, name=name)
    Department.objects.bulk_create(list(missing.values()), batch_size=_BATCH)
    known.update(missing)
    return known


class _DryRun(Exception):
    def __init__(self, result: ImportResult) -> None:
        self.result = result


def check_address_list(
    *, organisation: Organisation, data: bytes, full_list: bool, by: StaffUser
) -> list[Row]:
    """Every check import_address_list makes, nothing written: the list's rows, or its exceptions.

    Runs the import itself in a transaction that is rolled back, so the preview refuses exactly what the
    import would (bad rows, conflicts with people already listed, no signed agreement).
    """
    check_organisation_access(by, organisation)
    require_signed_agreement(organisation)
    parsed = _parse(data)
    if not parsed.rows and parsed.errors:
        raise AddressListInvalid(parsed.errors)
    try:
        with transaction.atomic():
            Organisation.objects.select_for_update(no_key=True).filter(pk=organisation.pk).first()
            raise _DryRun(_apply(organisation, parsed, full_list))
    except _DryRun:
        return parsed.rows
