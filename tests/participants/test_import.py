"""The address-list import: every bad row named with its line, all or nothing, updates not duplicates."""

from __future__ import annotations

import codecs
import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from participants.agreements import AgreementMissing
from participants.importing import (
    MAX_ROWS,
    MESSAGES,
    AddressListInvalid,
    ImportResult,
    RowError,
    import_address_list,
    parse_address_list,
)
from participants.models import Department, Organisation, Participant, StaffUser
from preventicons.crypto import blind_index_email, blind_index_phone
from tests.conftest import make_organisation

HEADER = "naam;e-mail;mobiel;afdeling"
GOOD = "Jan Jansen;jan@example.nl;06-12345678;Logistiek"


def csv_bytes(*rows: str, header: str = HEADER, encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    return newline.join([header, *rows]).encode(encoding) + newline.encode()


pytestmark = pytest.mark.usefixtures("english")


def run_import(
    organisation: Organisation, by: StaffUser, data: bytes, *, full_list: bool = False
) -> ImportResult:
    return import_address_list(organisation=organisation, data=data, full_list=full_list, by=by)


def refused(organisation: Organisation, by: StaffUser, data: bytes) -> list[RowError]:
    with pytest.raises(AddressListInvalid) as raised:
        run_import(organisation, by, data)
    return raised.value.errors


def department_names(organisation: Organisation) -> list[str]:
    return sorted(Department.objects.filter(organisation=organisation).values_list("name", flat=True))


# --- every kind of bad row, with its line and its own message ------------------------------------

BAD_ROWS = [
    ("name_missing", ";piet@example.nl;0687654321;Care", "The name is missing."),
    (
        "name_too_long",
        "P" * 201 + ";piet@example.nl;0687654321;Care",
        "The name is longer than 200 characters.",
    ),
    (
        "name_control_characters",
        "Piet\tPuk;piet@example.nl;0687654321;Care",
        "The name contains invisible control characters (such as a tab or line break).",
    ),
    (
        "name_control_characters",
        "Piet\u202ekuP;piet@example.nl;0687654321;Care",
        "The name contains invisible control characters (such as a tab or line break).",
    ),
    (
        "name_formula",
        '=HYPERLINK("http://evil.example");piet@example.nl;0687654321;Care',
        "The name starts with “=”. A spreadsheet would run it as a formula, so it is refused.",
    ),
    (
        "name_formula",
        "+Piet;piet@example.nl;0687654321;Care",
        "The name starts with “+”. A spreadsheet would run it as a formula, so it is refused.",
    ),
    (
        "name_formula",
        "-Piet;piet@example.nl;0687654321;Care",
        "The name starts with “-”. A spreadsheet would run it as a formula, so it is refused.",
    ),
    (
        "name_formula",
        "@SUM(A1);piet@example.nl;0687654321;Care",
        "The name starts with “@”. A spreadsheet would run it as a formula, so it is refused.",
    ),
    ("email_missing", "Piet Puk;;0687654321;Care", "The e-mail address is missing."),
    ("email_invalid", "Piet Puk;piet@;0687654321;Care", "The e-mail address is not valid."),
    ("email_invalid", "Piet Puk;piet at example.nl;0687654321;Care", "The e-mail address is not valid."),
    ("email_invalid", "Piet Puk;piet@localhost;0687654321;Care", "The e-mail address is not valid."),
    (
        "email_too_long",
        "Piet Puk;" + "p" * 64 + "@" + ("d" * 60 + ".") * 3 + "example.nl;0687654321;Care",
        "The e-mail address is longer than 254 characters.",
    ),
    ("mobile_missing", "Piet Puk;piet@example.nl;;Care", "The mobile number is missing."),
    (
        "mobile_unparseable",
        "Piet Puk;piet@example.nl;06-CALLME;Care",
        "The mobile number cannot be read as a phone number.",
    ),
    (
        "mobile_unparseable",
        "Piet Puk;piet@example.nl;+;Care",
        "The mobile number cannot be read as a phone number.",
    ),
    (
        "mobile_invalid",
        "Piet Puk;piet@example.nl;06 1234 567;Care",
        "The mobile number does not exist (wrong number of digits or an unknown prefix).",
    ),
    (
        "mobile_landline",
        "Piet Puk;piet@example.nl;020-1234567;Care",
        "This is a landline number; text messages cannot reach it. Give a mobile number.",
    ),
    (
        "mobile_not_mobile",
        "Piet Puk;piet@example.nl;0800-1234;Care",
        "This is a service number (such as 0800, 0900 or 085), not a mobile number; "
        "text messages cannot reach it.",
    ),
    (
        "mobile_not_mobile",
        "Piet Puk;piet@example.nl;085-1234567;Care",
        "This is a service number (such as 0800, 0900 or 085), not a mobile number; "
        "text messages cannot reach it.",
    ),
    (
        "mobile_country",
        "Piet Puk;piet@example.nl;+33 6 12 34 56 78;Care",
        "This mobile number is not from a country we send text messages to (NL (+31), BE (+32), DE (+49)).",
    ),
    ("department_missing", "Piet Puk;piet@example.nl;0687654321;  ", "The department is missing."),
    (
        "department_too_long",
        "Piet Puk;piet@example.nl;0687654321;" + "D" * 201,
        "The department is longer than 200 characters.",
    ),
    (
        "department_control_characters",
        "Piet Puk;piet@example.nl;0687654321;Ca\x07re",
        "The department contains invisible control characters (such as a tab or line break).",
    ),
    (
        "department_formula",
        "Piet Puk;piet@example.nl;0687654321;=1+1",
        "The department starts with “=”. A spreadsheet would run it as a formula, so it is refused.",
    ),
    (
        "row_too_many_fields",
        "Puk, Piet;piet@example.nl;0687654321;Care;extra",
        "This row has 5 fields but the header has 4. Is there a separator inside a value? "
        "Then put that value between double quotes.",
    ),
    (
        "row_too_few_fields",
        "Piet Puk;piet@example.nl;0687654321",
        "This row has only 3 of the 4 fields of the header.",
    ),
    (
        "email_duplicate",
        "Piet Puk;JAN@Example.nl;0687654321;Care",
        "The same e-mail address is already on line 2.",
    ),
    (
        "mobile_duplicate",
        "Piet Puk;piet@example.nl;+31 6 1234 5678;Care",
        "The same mobile number is already on line 2.",
    ),
]


@pytest.mark.parametrize(
    ("code", "row", "reason"), BAD_ROWS, ids=[f"{c}-{i}" for i, (c, _r, _m) in enumerate(BAD_ROWS)]
)
def test_a_bad_row_is_named_with_its_line_and_reason_and_nothing_is_written(
    organisation: Organisation, employer: StaffUser, code: str, row: str, reason: str
) -> None:
    departments_before = department_names(organisation)
    errors = refused(
        organisation,
        employer,
        csv_bytes(GOOD, row, GOOD.replace("jan@", "kees@").replace("12345678", "11223344")),
    )
    assert errors == [RowError(line=3, reason=reason, code=code)]
    assert Participant.objects.count() == 0
    assert department_names(organisation) == departments_before


def test_every_message_is_exercised_somewhere_in_this_module() -> None:
    source = open(__file__, encoding="utf-8").read()  # noqa: SIM115
    assert [code for code in MESSAGES if f'"{code}"' not in source] == []


FILE_ERRORS = [
    ("file_empty", b"", None, "The file is empty."),
    ("file_empty", b"\r\n  \r\n\r\n", None, "The file is empty."),
    ("file_empty", b";;;\r\n;;;\r\n", None, "The file is empty."),
    ("file_no_rows", csv_bytes(), None, "The file has a header line but no employees."),
    ("file_no_rows", csv_bytes(";;;", ""), None, "The file has a header line but no employees."),
    (
        "file_workbook",
        b"PK\x03\x04\x14\x00\x06\x00xl/workbook.xml",
        None,
        "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, choose “Save as” and the "
        "format “CSV (comma or semicolon delimited)”.",
    ),
    (
        "file_workbook",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32,
        None,
        "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, choose “Save as” and the "
        "format “CSV (comma or semicolon delimited)”.",
    ),
    (
        "file_not_text",
        codecs.BOM_UTF16_LE + csv_bytes(GOOD, encoding="utf-16-le"),
        None,
        "This file is not plain text (it may be UTF-16 “Unicode text” or a binary file). Save it as "
        "“CSV UTF-8” and try again.",
    ),
    (
        "file_undecodable",
        csv_bytes(GOOD).replace(b"Logistiek", b"Logistiek")
        + b"Piet \x81;piet@example.nl;0687654321;Care\r\n",
        3,
        "This line holds characters that are neither UTF-8 nor Windows-1252. Save the file as “CSV UTF-8” "
        "and try again.",
    ),
    (
        "file_undecodable",
        codecs.BOM_UTF8 + csv_bytes(GOOD, "Ren\xe9e;renee@example.nl;0687654321;Care", encoding="cp1252"),
        3,
        "This line holds characters that are neither UTF-8 nor Windows-1252. Save the file as “CSV UTF-8” "
        "and try again.",
    ),
    (
        "file_bad_quotes",
        csv_bytes(GOOD, '"Piet Puk;piet@example.nl;0687654321;Care', "Kees;kees@example.nl;0611223344;Care"),
        3,
        "A quotation mark on this line is not closed or is followed by other text, so the rest of the file "
        "cannot be read reliably. Check the quotation marks around values.",
    ),
    (
        "file_value_too_large",
        csv_bytes(GOOD, "Piet" + " " * 200_000 + ";piet@example.nl;0687654321;Care"),
        3,
        "A value on this line is far too long, so the rest of the file cannot be read reliably. "
        "Is a quotation mark missing?",
    ),
    (
        "header_missing_mobile",
        csv_bytes("Jan;jan@example.nl;Care", header="naam;e-mail;afdeling"),
        1,
        "The header line has no column for the mobile number (accepted: mobiel, mobielnummer, mobile, "
        "mobilenumber, phone, telefoon, telefoonnummer).",
    ),
    (
        "header_missing_name",
        csv_bytes("jan@example.nl;0612345678;Care", header="e-mail;mobiel;afdeling"),
        1,
        "The header line has no column for the name (accepted: fullname, naam, name, volledigenaam).",
    ),
    (
        "header_missing_email",
        csv_bytes("Jan;0612345678;Care", header="naam;mobiel;afdeling"),
        1,
        "The header line has no column for the e-mail address (accepted: email, emailaddress, emailadres).",
    ),
    (
        "header_missing_department",
        csv_bytes("Jan;jan@example.nl;0612345678", header="naam;e-mail;mobiel"),
        1,
        "The header line has no column for the department (accepted: afdeling, department).",
    ),
    (
        "header_unknown_column",
        csv_bytes(GOOD + ";directeur", header=HEADER + ";functie"),
        1,
        "The header line has a column “functie” that we do not know. Use only the columns naam, e-mail, "
        "mobiel and afdeling (or name, email, mobile and department).",
    ),
    (
        "header_empty_column",
        csv_bytes("Jan Jansen;;jan@example.nl;06-12345678;Logistiek", header="naam;;e-mail;mobiel;afdeling"),
        1,
        "The header line has a column without a name (column 2).",
    ),
    (
        "header_duplicate_column",
        csv_bytes("Jan;Jan;jan@example.nl;06-12345678;Care", header="naam;Name;e-mail;mobiel;afdeling"),
        1,
        "The header line has column “Name” twice (also as “naam”).",
    ),
]


@pytest.mark.parametrize(
    ("code", "data", "line", "reason"),
    FILE_ERRORS,
    ids=[f"{c}-{i}" for i, (c, *_rest) in enumerate(FILE_ERRORS)],
)
def test_a_bad_file_is_refused_with_its_own_message_and_nothing_is_written(
    organisation: Organisation, employer: StaffUser, code: str, data: bytes, line: int | None, reason: str
) -> None:
    departments_before = department_names(organisation)
    errors = refused(organisation, employer, data)
    assert RowError(line=line, reason=reason, code=code) in errors
    assert {error.code for error in errors} == {code}
    assert Participant.objects.count() == 0
    assert department_names(organisation) == departments_before


def test_a_file_over_five_megabytes_is_refused_before_it_is_read(
    organisation: Organisation, employer: StaffUser
) -> None:
    row = "Piet Puk;piet@example.nl;0687654321;" + "x" * 150
    data = csv_bytes(*[row] * (5 * 1024 * 1024 // len(row) + 10))
    assert len(data) > 5 * 1024 * 1024
    assert refused(organisation, employer, data) == [
        RowError(
            line=None,
            reason="The file is larger than 5 MB. Split the list or remove unused columns.",
            code="file_too_large",
        )
    ]
    assert Participant.objects.count() == 0


def test_more_rows_than_the_cap_are_refused(organisation: Organisation, employer: StaffUser) -> None:
    rows = [f"P{i};p{i}@example.nl;06{i:08d};Care" for i in range(MAX_ROWS + 1)]
    errors = refused(organisation, employer, csv_bytes(*rows))
    assert errors == [
        RowError(
            line=None,
            reason="The file has more than 50000 employees; split it into smaller lists.",
            code="file_too_many_rows",
        )
    ]
    assert Participant.objects.count() == 0


def test_a_row_with_several_problems_names_each_of_them(
    organisation: Organisation, employer: StaffUser
) -> None:
    errors = refused(organisation, employer, csv_bytes(";piet@;020-1234567;"))
    assert [(error.line, error.code) for error in errors] == [
        (2, "name_missing"),
        (2, "email_invalid"),
        (2, "mobile_landline"),
        (2, "department_missing"),
    ]


def test_one_bad_row_among_good_ones_imports_none_and_every_bad_row_is_named(
    organisation: Organisation, employer: StaffUser
) -> None:
    good = [f"Medewerker {i};m{i}@example.nl;06{i + 10000000:08d};Nieuwbouw" for i in range(40)]
    rows = [
        *good[:10],
        "Piet;piet@;0687654321;Care",
        *good[10:30],
        "=cmd;x@example.nl;0681234567;Care",
        *good[30:],
    ]
    errors = refused(organisation, employer, csv_bytes(*rows))
    assert [(error.line, error.code) for error in errors] == [(12, "email_invalid"), (33, "name_formula")]
    assert Participant.objects.count() == 0
    assert "Nieuwbouw" not in department_names(organisation)


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(
    organisation: Organisation, employer: StaffUser
) -> None:
    data = csv_bytes(
        "", GOOD, "", '"Piet\nPuk";piet@example.nl;0687654321;Care', "Kees;kees@;0611223344;Care"
    )
    errors = refused(organisation, employer, data)
    assert [(error.line, error.code) for error in errors] == [
        (5, "name_control_characters"),
        (7, "email_invalid"),
    ]


# --- conflicts with the people already on the list -------------------------------------------------


def test_an_email_of_one_person_with_the_mobile_of_another_is_a_conflict(
    organisation: Organisation, employer: StaffUser
) -> None:
    run_import(
        organisation,
        employer,
        csv_bytes("Anna;anna@example.nl;0611111111;Care", "Bert;bert@example.nl;0622222222;IT"),
    )
    errors = refused(organisation, employer, csv_bytes("Anna;anna@example.nl;0622222222;Care"))
    assert errors == [
        RowError(
            line=2,
            reason="The e-mail address belongs to one person already on your list and the mobile number to "
            "another. Correct this row, or change the other person first.",
            code="conflict_email_and_mobile",
        )
    ]
    anna = Participant.objects.get(email_index=blind_index_email("anna@example.nl"))
    assert anna.mobile == "+31611111111"


def test_two_rows_matching_one_person_are_a_conflict(organisation: Organisation, employer: StaffUser) -> None:
    run_import(organisation, employer, csv_bytes("Anna;anna@example.nl;0611111111;Care"))
    errors = refused(
        organisation,
        employer,
        csv_bytes("Anna;anna@example.nl;0633333333;Care", "Anna Nieuw;anna.nieuw@example.nl;0611111111;Care"),
    )
    assert errors == [
        RowError(
            line=3,
            reason="This row and line 2 both match the same person already on your list "
            "(by e-mail address or mobile number).",
            code="conflict_same_person",
        )
    ]
    assert Participant.objects.count() == 1


def test_conflicts_are_named_together_with_bad_rows(organisation: Organisation, employer: StaffUser) -> None:
    run_import(
        organisation,
        employer,
        csv_bytes("Anna;anna@example.nl;0611111111;Care", "Bert;bert@example.nl;0622222222;IT"),
    )
    errors = refused(
        organisation, employer, csv_bytes("Anna;anna@example.nl;0622222222;Care", "Kees;kees@;0633333333;IT")
    )
    assert [(error.line, error.code) for error in errors] == [
        (2, "conflict_email_and_mobile"),
        (3, "email_invalid"),
    ]


# --- what spreadsheets write -------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "06-12345678",
        "0612345678",
        "+31 6 1234 5678",
        "0031612345678",
        "06 12 34 56 78",
        "(06) 1234-5678",
        "612345678",
    ],
)
def test_dutch_mobile_notations_become_e164(written: str) -> None:
    [row] = parse_address_list(csv_bytes(f"Jan;jan@example.nl;{written};Care"))
    assert row.mobile == "+31612345678"


def test_a_foreign_mobile_number_is_accepted() -> None:
    [row] = parse_address_list(csv_bytes("Jan;jan@example.be;+32 470 12 34 56;Care"))
    assert row.mobile == "+32470123456"


def test_utf8_with_bom_and_semicolons() -> None:
    [row] = parse_address_list(
        codecs.BOM_UTF8 + csv_bytes("José Müller-Łukasz;jose@example.nl;0612345678;Zorg & Welzijn")
    )
    assert (row.line, row.name, row.department) == (2, "José Müller-Łukasz", "Zorg & Welzijn")


def test_windows_1252_with_commas_and_english_headers() -> None:
    data = csv_bytes(
        '"Gaël, Renée";renee@example.nl;0612345678;Café',
        header="Name;Email;Mobile;Department",
        encoding="cp1252",
    )
    [row] = parse_address_list(
        data.replace(b";", b",").replace(b'"Ga\xebl, Ren\xe9e"', b'"Ga\xebl, Ren\xe9e"')
    )
    assert (row.name, row.department) == ("Gaël, Renée", "Café")


def test_windows_1252_euro_sign_and_quotes() -> None:
    data = csv_bytes("Zo\xeb \u201cZee\u201d;zoe@example.nl;0612345678;Inkoop \u20ac", encoding="cp1252")
    [row] = parse_address_list(data)
    assert (row.name, row.department) == ("Zoë “Zee”", "Inkoop €")


def test_header_in_any_order_case_and_spacing() -> None:
    data = csv_bytes(
        "Care;0612345678;Jan;jan@example.nl", header=" AFDELING ; Mobiel nummer;Naam ;E-Mail", newline="\n"
    )
    [row] = parse_address_list(data)
    assert (row.name, row.email, row.mobile, row.department) == (
        "Jan",
        "jan@example.nl",
        "+31612345678",
        "Care",
    )


def test_comma_delimited_with_quoted_semicolons() -> None:
    data = csv_bytes('"Jan; de Vries",jan@example.nl,0612345678,Care', header="naam,e-mail,telefoon,afdeling")
    [row] = parse_address_list(data)
    assert row.name == "Jan; de Vries"


def test_excels_sep_line_and_blank_and_empty_rows_are_ignored() -> None:
    data = b"sep=,\r\n" + csv_bytes(
        ",,,", "", "Jan,jan@example.nl,0612345678,Care", header="naam,e-mail,mobiel,afdeling"
    )
    [row] = parse_address_list(data)
    assert row.line == 5


def test_old_mac_line_endings() -> None:
    data = csv_bytes(GOOD, "Kees;kees@example.nl;0611223344;Care", newline="\r")
    assert [row.line for row in parse_address_list(data)] == [2, 3]


def test_whitespace_around_values_is_removed() -> None:
    [row] = parse_address_list(
        csv_bytes("  Jan Jansen \u00a0; Jan@Example.nl ; 06-12345678 ;  Zorg   en  welzijn ")
    )
    assert (row.name, row.email, row.department) == ("Jan Jansen", "Jan@Example.nl", "Zorg en welzijn")


# --- importing -----------------------------------------------------------------------------------


def test_import_creates_participants_and_departments_as_named(
    organisation: Organisation, employer: StaffUser
) -> None:
    result = run_import(
        organisation,
        employer,
        csv_bytes(GOOD, "Kees de Boer;kees@example.nl;0611223344;IT", "Els;els@example.nl;0655667788;it"),
    )
    assert result == ImportResult(created=3, updated=0, unchanged=0, unlisted=0, relisted=0)
    assert department_names(organisation) == ["Care", "Finance", "IT", "Logistiek"]
    jan = Participant.objects.get(email_index=blind_index_email("JAN@example.nl"))
    assert (jan.name, jan.email, jan.mobile) == ("Jan Jansen", "jan@example.nl", "+31612345678")
    assert jan.mobile_index == blind_index_phone("+31612345678")
    assert jan.department is not None and jan.department.name == "Logistiek"
    assert jan.is_listed and jan.status == Participant.Status.INVITED
    els = Participant.objects.get(email_index=blind_index_email("els@example.nl"))
    assert els.department is not None and els.department.name == "IT"


def test_the_table_does_not_keep_the_files_order(organisation: Organisation, employer: StaffUser) -> None:
    # The employer wrote the file: rows stored in its order would say which row is which colleague.
    rows = [f"Medewerker {n};m{n}@example.nl;06{20000000 + n};Care" for n in range(40)]
    run_import(organisation, employer, csv_bytes(*rows))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT email_index FROM participants_participant WHERE organisation_id = %s ORDER BY ctid",
            [organisation.pk],
        )
        stored = [row[0] for row in cursor.fetchall()]
    in_file_order = [blind_index_email(f"m{n}@example.nl") for n in range(40)]
    assert sorted(stored) == sorted(in_file_order)
    assert stored != in_file_order


def test_sealed_names_and_addresses_are_all_as_long(organisation: Organisation, employer: StaffUser) -> None:
    run_import(
        organisation,
        employer,
        csv_bytes(
            GOOD,
            "Ed;ed@example.nl;0611223344;IT",
            "Maria van den Berg-Smit;m.vdberg@example.nl;0655667788;IT",
        ),
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT length(name), length(email), length(mobile) FROM participants_participant "
            "WHERE organisation_id = %s",
            [organisation.pk],
        )
        lengths = cursor.fetchall()
    assert len(lengths) == 1 and len(set(lengths[0])) == 1  # one length for every name, address and number


def test_the_database_holds_no_plaintext_name_email_or_mobile(
    organisation: Organisation, employer: StaffUser
) -> None:
    run_import(
        organisation, employer, csv_bytes("Jozefien Zwartbroek;jozefien@zwartbroek.example;06-81234567;Care")
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM participants_participant")
        columns = [column[0] for column in cursor.description]
        [raw] = cursor.fetchall()
    stored = dict(zip(columns, raw, strict=True))
    everything = " ".join(str(value) for value in raw).lower()
    for plaintext in ("jozefien", "zwartbroek", "81234567", "+31681234567", "0681234567"):
        assert plaintext not in everything
    for column in ("name", "email", "mobile"):
        assert stored[column].startswith("v1.")


def test_reimport_updates_instead_of_duplicating(organisation: Organisation, employer: StaffUser) -> None:
    run_import(
        organisation,
        employer,
        csv_bytes(GOOD, "Kees;kees@example.nl;0611223344;IT", "Els;els@example.nl;0655667788;IT"),
    )
    ids = set(Participant.objects.values_list("pk", flat=True))
    result = run_import(
        organisation,
        employer,
        csv_bytes(
            "Jan Jansen-de Wit;JAN@example.nl;0612345678;Finance",  # name and department changed
            "Kees;kees.nieuw@example.nl;+31 6 1122 3344;IT",  # found by mobile: new e-mail address
            "Els;els@example.nl;0681122334;IT",  # found by e-mail: new mobile number
            "Nieuw;nieuw@example.nl;0644444444;IT",
        ),
    )
    assert result == ImportResult(created=1, updated=3, unchanged=0, unlisted=0, relisted=0)
    assert Participant.objects.count() == 4
    assert ids < set(Participant.objects.values_list("pk", flat=True))
    jan = Participant.objects.get(email_index=blind_index_email("jan@example.nl"))
    assert (jan.name, jan.email, jan.department.name if jan.department else None) == (
        "Jan Jansen-de Wit",
        "JAN@example.nl",
        "Finance",
    )
    kees = Participant.objects.get(mobile_index=blind_index_phone("+31611223344"))
    assert (kees.email, kees.email_index) == (
        "kees.nieuw@example.nl",
        blind_index_email("kees.nieuw@example.nl"),
    )
    els = Participant.objects.get(email_index=blind_index_email("els@example.nl"))
    assert (els.mobile, els.mobile_index) == ("+31681122334", blind_index_phone("+31681122334"))
    again = run_import(
        organisation, employer, csv_bytes("Jan Jansen-de Wit;JAN@example.nl;0612345678;finance")
    )
    assert again == ImportResult(created=0, updated=0, unchanged=1, unlisted=0, relisted=0)


@pytest.mark.parametrize("status", [Participant.Status.ACTIVE, Participant.Status.INACTIVE])
def test_an_enrolled_participants_own_contact_data_is_not_overwritten_by_the_list(
    organisation: Organisation, employer: StaffUser, status: str
) -> None:
    run_import(organisation, employer, csv_bytes("Anna de Wit;anna@example.nl;0611111111;Care"))
    Participant.objects.all().set_state(status=status)
    result = run_import(organisation, employer, csv_bytes("Anna Oud;anna@example.nl;0633333333;IT"))
    assert result == ImportResult(created=0, updated=1, unchanged=0, unlisted=0, relisted=0)
    anna = Participant.objects.get()
    assert (anna.name, anna.email, anna.mobile) == ("Anna de Wit", "anna@example.nl", "+31611111111")
    assert anna.mobile_index == blind_index_phone("+31611111111")
    assert anna.department is not None and anna.department.name == "IT"


def test_the_list_cannot_move_both_factors_of_an_enrolled_participant(
    organisation: Organisation, employer: StaffUser
) -> None:
    run_import(organisation, employer, csv_bytes("Anna;anna@example.nl;0611111111;Care"))
    Participant.objects.all().set_state(status=Participant.Status.ACTIVE)
    # Step 1: her address with the employer's number; step 2: the employer's address with that number.
    run_import(organisation, employer, csv_bytes("Anna;anna@example.nl;0644444444;Care"))
    run_import(organisation, employer, csv_bytes("Anna;hr@zorggroep.example;0644444444;Care"))
    anna = Participant.objects.with_status(Participant.Status.ACTIVE).get()
    assert (anna.email, anna.mobile) == ("anna@example.nl", "+31611111111")
    assert (anna.email_index, anna.mobile_index) == (
        blind_index_email("anna@example.nl"),
        blind_index_phone("+31611111111"),
    )


def test_full_list_unlists_the_missing_and_relists_the_returning(
    organisation: Organisation, employer: StaffUser
) -> None:
    everyone = (
        "Anna;anna@example.nl;0611111111;Care",
        "Bert;bert@example.nl;0622222222;IT",
        "Cor;cor@example.nl;0633333333;IT",
    )
    run_import(organisation, employer, csv_bytes(*everyone), full_list=True)
    partial = run_import(organisation, employer, csv_bytes(everyone[0], everyone[2]), full_list=False)
    assert partial.unlisted == 0
    assert Participant.objects.filter(is_listed=True).count() == 3

    result = run_import(organisation, employer, csv_bytes(everyone[0], everyone[2]), full_list=True)
    assert result == ImportResult(created=0, updated=0, unchanged=2, unlisted=1, relisted=0)
    bert = Participant.objects.get(email_index=blind_index_email("bert@example.nl"))
    assert not bert.is_listed
    assert bert.unlisted_on == timezone.localdate()

    back = run_import(organisation, employer, csv_bytes(*everyone), full_list=True)
    assert back == ImportResult(created=0, updated=0, unchanged=3, unlisted=0, relisted=1)
    bert.refresh_from_db()
    assert bert.is_listed and bert.unlisted_on is None


def test_full_list_leaves_other_organisations_alone(
    organisation: Organisation,
    other_organisation: Organisation,
    employer: StaffUser,
    other_employer: StaffUser,
) -> None:
    run_import(other_organisation, other_employer, csv_bytes("Anna;anna@example.nl;0611111111;Care"))
    result = run_import(
        organisation, employer, csv_bytes("Bert;bert@example.nl;0622222222;IT"), full_list=True
    )
    assert result.unlisted == 0
    assert Participant.objects.filter(organisation=other_organisation, is_listed=True).count() == 1


def test_the_same_person_may_be_on_two_organisations_lists(
    organisation: Organisation,
    other_organisation: Organisation,
    employer: StaffUser,
    other_employer: StaffUser,
) -> None:
    run_import(organisation, employer, csv_bytes(GOOD))
    result = run_import(other_organisation, other_employer, csv_bytes(GOOD))
    assert result.created == 1
    assert Participant.objects.count() == 2


def test_a_stopped_participant_is_matched_by_their_listed_hashes_and_never_revived(
    organisation: Organisation, employer: StaffUser
) -> None:
    """A stop keeps the hashes the list names them by on the row: the same list finds that row, changes
    nothing on it, creates nobody and invites nobody, as it would for anyone enrolled."""
    from participants import account

    run_import(organisation, employer, csv_bytes(GOOD))
    stopped = Participant.objects.get()
    account.stop_participation(participant=stopped)
    stopped.refresh_from_db()
    hashes = (stopped.listed_email_hash, stopped.listed_mobile_hash)
    result = run_import(organisation, employer, csv_bytes(GOOD), full_list=True)
    assert result == ImportResult(created=0, updated=0, unchanged=1, unlisted=0, relisted=0)
    stopped.refresh_from_db()
    assert Participant.objects.get() == stopped
    assert stopped.status == Participant.Status.STOPPED
    assert (stopped.name, stopped.email, stopped.mobile) == (None, None, None)
    assert (stopped.listed_email_hash, stopped.listed_mobile_hash) == hashes
    # A look-alike in place of the index, never NULL (participants.models.ContactHashField).
    assert stopped.email_index not in (None, blind_index_email("jan@example.nl"))
    # A full list without them unlists their row, as it would anyone's.
    other = csv_bytes("Piet Peters;piet@example.nl;06-12345670;Logistiek")
    assert run_import(organisation, employer, other, full_list=True).unlisted == 1
    stopped.refresh_from_db()
    assert not stopped.is_listed


def test_a_stopped_participant_with_a_leftover_index_neither_links_nor_blocks(
    organisation: Organisation, employer: StaffUser
) -> None:
    run_import(organisation, employer, csv_bytes(GOOD))
    # A row stopped before the look-alikes: its blind indexes still real.
    Participant.objects.all().set_state(status=Participant.Status.STOPPED)
    result = run_import(organisation, employer, csv_bytes(GOOD))
    # Matched by the listed hashes, as anyone is: nobody new.
    assert (result.created, result.unchanged) == (0, 1)
    stopped = Participant.objects.with_status(Participant.Status.STOPPED).get()
    # Replaced by look-alikes, never NULL: only the hashes this list writes, so no other stopped row changes.
    assert stopped.email_index not in (None, blind_index_email("jan@example.nl"))
    assert stopped.mobile_index not in (None, blind_index_phone("+31612345678"))


def test_without_a_signed_agreement_nothing_is_read_or_written(db: object) -> None:
    unsigned = make_organisation("Transport Oost", "logistiek", signed=False)
    from preventicons.roles import Role
    from tests.conftest import make_staff

    hr = make_staff("hr-oost", Role.EMPLOYER, unsigned)
    with pytest.raises(AgreementMissing) as raised:
        run_import(unsigned, hr, csv_bytes(GOOD))
    assert "No signed processing agreement" in str(raised.value)
    assert Participant.objects.count() == 0
    assert "Logistiek" not in department_names(unsigned)


def test_an_employer_imports_only_for_their_own_organisation(
    organisation: Organisation, other_employer: StaffUser, platform_admin: StaffUser, casemanager: StaffUser
) -> None:
    for outsider in (other_employer, casemanager):
        with pytest.raises(PermissionDenied):
            run_import(organisation, outsider, csv_bytes(GOOD))
    assert Participant.objects.count() == 0
    assert run_import(organisation, platform_admin, csv_bytes(GOOD)).created == 1


def test_ten_thousand_rows(organisation: Organisation, employer: StaffUser) -> None:
    rows = [
        f"Medewerker {i};medewerker{i}@example.nl;06{20000000 + i:08d};Afdeling {i % 25}"
        for i in range(10_000)
    ]
    result = run_import(organisation, employer, csv_bytes(*rows), full_list=True)
    assert result == ImportResult(created=10_000, updated=0, unchanged=0, unlisted=0, relisted=0)
    assert Participant.objects.filter(organisation=organisation).count() == 10_000
    assert len(department_names(organisation)) == 3 + 25
    rows[17] = rows[17].replace("Medewerker 17", "Medewerker Zeventien")
    again = run_import(organisation, employer, csv_bytes(*rows[:9_000]), full_list=True)
    assert again == ImportResult(created=0, updated=1, unchanged=8_999, unlisted=1_000, relisted=0)
    assert Participant.objects.get(email_index=blind_index_email("medewerker17@example.nl")).name == (
        "Medewerker Zeventien"
    )


def test_unlisted_on_is_the_local_date(organisation: Organisation, employer: StaffUser) -> None:
    run_import(organisation, employer, csv_bytes(GOOD, "Kees;kees@example.nl;0611223344;IT"))
    run_import(organisation, employer, csv_bytes(GOOD), full_list=True)
    unlisted = Participant.objects.get(is_listed=False)
    assert isinstance(unlisted.unlisted_on, dt.date)
    assert unlisted.unlisted_on == timezone.localdate()
