"""What the progress-note form refuses as identifying, and the look-alikes it lets through (issue 18, 6)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casefiles.identitytext import Kind, find_identifying, is_valid_iban, passes_eleven_proof

NAMES = ["Jan", "de Vries"]


def kinds(text: str, names: list[str] | None = None) -> list[tuple[str, str]]:
    return [
        (f.kind.value, f.excerpt) for f in find_identifying(text, names=NAMES if names is None else names)
    ]


@pytest.mark.parametrize(
    "address",
    ["jan.jansen@example.nl", "j+notes@mail.co.uk", "a_b-c@sub.domain.org", "ZORG@ZORGGROEP.NL"],
)
def test_an_e_mail_address_is_refused(address: str) -> None:
    assert kinds(f"Mailde vanaf {address}.") == [("email", address)]


@pytest.mark.parametrize(
    "number",
    [
        "06-12345678",
        "06 1234 5678",
        "0612345678",
        "06 12 34 56 78",
        "06-12-34-56-78",
        "+31 6 12345678",
        "+31612345678",
        "+31 (0)6 1234 5678",
        "0031612345678",
        "0031 6 1234 5678",
        "(020) 123 4567",
        "020-1234567",
        "020 123 45 67",
        "+31 (0)20 123 4567",
        "+31 20 123 4567",
        "0512-123456",
        "0800-1234",
        "0900 123 4567",
    ],
)
def test_a_dutch_phone_number_in_any_notation_is_refused(number: str) -> None:
    assert kinds(f"Bereikbaar op {number} na vijven.") == [("phone", number)]


@pytest.mark.parametrize("bsn", ["123456782", "123.456.782", "123 456 782", "1234.56.782", "111222333"])
def test_a_bsn_that_passes_the_eleven_proof_is_refused(bsn: str) -> None:
    assert passes_eleven_proof(bsn.replace(".", "").replace(" ", ""))
    assert kinds(f"Noemde zijn nummer {bsn} aan de telefoon") == [("bsn", bsn)]


@pytest.mark.parametrize(
    "iban",
    [
        "NL91ABNA0417164300",
        "NL91 ABNA 0417 1643 00",
        "nl91 abna 0417 1643 00",
        "NL44RABO0123456789",
        "BE68 5390 0754 7034",
        "DE89 3704 0044 0532 0130 00",
        "GB29NWBK60161331926819",
    ],
)
def test_an_iban_with_a_valid_checksum_is_refused(iban: str) -> None:
    assert kinds(f"Rekening {iban} en verder niets") == [("iban", iban)]


@pytest.mark.parametrize(
    "address",
    ["1234 AB 12", "1234AB 12a", "1234 ab, 12", "1234 AB 12-b", "9999ZZ 1", "12, 1234 AB", "12a 1234AB"],
)
def test_a_postcode_with_a_house_number_is_refused(address: str) -> None:
    assert kinds(f"Woont op {address} sinds kort") == [("postcode", address)]


@pytest.mark.parametrize(
    ("text", "excerpt"),
    [
        ("Gesprek met Jan over zijn werk.", "Jan"),
        ("gesprek met jan over zijn werk", "jan"),
        ("Mevrouw De Vries belde.", "De Vries"),
        ("Mevr. de vries belde", "de vries"),
        ("Vries belde terug", "Vries"),
        ("JAN was er niet", "JAN"),
    ],
)
def test_the_participants_own_name_is_refused(text: str, excerpt: str) -> None:
    assert kinds(text) == [("name", excerpt)]


def test_names_are_compared_without_accents_either_way() -> None:
    assert kinds("Müller en Muller en MÜLLER", ["Muller"]) == [
        ("name", "Müller"),
        ("name", "Muller"),
        ("name", "MÜLLER"),
    ]
    assert kinds("Zoe belde", ["Zoë"]) == [("name", "Zoe")]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Bakker", "Vandaag belde bakker terug"),
        ("Visser", "visser gaf aan dat het beter gaat"),
        ("Smit", "Smit zegt dat het beter gaat"),
        ("van den Berg", "Van den Berg zegt dat het beter gaat"),
        ("Groot", "Ik sprak vandaag met Groot over werk"),
        ("Berg", "Gesprek (met Berg) ging goed"),
    ],
)
def test_a_surname_counts_where_it_is_used_as_a_name(name: str, text: str) -> None:
    assert [kind for kind, _ in kinds(text, [name])] == ["name"]


def test_a_name_is_matched_only_as_a_whole_word() -> None:
    assert kinds("Januari was zwaar; Jansen en Vriesland ook", NAMES) == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Groot", "Het verschil met vorige week is groot."),
        ("Groot", "Groot verschil met vorige week."),
        ("Berg", "Ziet op tegen een berg werk."),
        ("Klein", "Een klein stapje vooruit. Klein maar fijn."),
        ("Bos", "Wandelt graag in het bos"),
        ("de Jong", "Voelt zich niet meer zo jong"),
        ("Ben", "Ik ben blij met de voortgang, zegt ze."),
        ("Wit", "Werd wit van schrik"),
        ("Hoek", "Zit in een hoek waar ze niet uit komt"),
    ],
)
def test_a_name_that_is_also_a_word_used_as_a_word_is_accepted(name: str, text: str) -> None:
    assert kinds(text, [name]) == []


@pytest.mark.parametrize(
    "text",
    [
        "Nummer 123456789 faalt de elfproef",
        "123.456.789 is geen BSN",
        "Afspraak op 12-03-2024 om 10:30",
        "Afspraak op 01-03-2024 10:30",
        "Op 12-03-2024 1 gesprek gehad",
        "Datum 12.03.2024, tijd 09.30",
        "Datum 01/03/2024",
        "Om 14:45 uur gebeld",
        "Kosten € 1.234,56 en EUR 123.456.782",
        "Week 1234 van het traject",
        "Alleen de postcode 1234 AB is genoemd",
        "Tussen 1990 en 2000 werkte hij daar",
        "Reed 1200 km, 3 dagen",
        "Scores 4, 3, 5 en 2",
        "NL91ABNA0417164301 is een tikfout",
        "Random 06-1234567 (te kort)",
        "",
    ],
)
def test_look_alikes_are_accepted(text: str) -> None:
    assert kinds(text) == []


def test_each_finding_says_where_and_why() -> None:
    text = "Jan (06-12345678) mailt jan@example.nl"
    found = find_identifying(text, names=["Jan"])
    assert [(f.kind, text[f.start : f.end]) for f in found] == [
        (Kind.NAME, "Jan"),
        (Kind.PHONE, "06-12345678"),
        (Kind.EMAIL, "jan@example.nl"),
    ]
    assert all(str(f.reason) for f in found)
    assert len({str(f.reason) for f in found}) == 3


def test_overlapping_findings_are_reported_once() -> None:
    # The IBAN's digits also look like a phone number and the name sits inside the e-mail address.
    assert kinds("NL91 ABNA 0417 1643 00, jan@example.nl") == [
        ("iban", "NL91 ABNA 0417 1643 00"),
        ("email", "jan@example.nl"),
    ]


def test_the_checksums() -> None:
    assert is_valid_iban("NL91ABNA0417164300") and not is_valid_iban("NL91ABNA0417164301")
    assert passes_eleven_proof("123456782") and not passes_eleven_proof("123456789")
    assert not passes_eleven_proof("000000000")


@pytest.mark.parametrize(
    "text",
    [
        "0" * 10000,
        "a@" * 5000,
        "a" * 20000,
        "a." * 10000 + "@",
        "1 " * 10000,
        "06-" * 5000,
        "NL12" * 5000,
        "1234 AB " * 3000,
        "+(" * 5000,
        "Berg " * 10000,
        " " * 10000 + "x@y",
        "1" * 64 + "@" + "a." * 5000,
    ],
)
def test_long_adversarial_texts_return(text: str) -> None:
    # No wall-clock assert: a catastrophic backtrack would hang this test, not fail it by a margin.
    assert isinstance(find_identifying(text, names=["Berg", "van den Berg"]), list)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("0123456789 .-+()@abcNLAB,\né'"), max_size=300),
    name=st.text(max_size=20),
)
def test_never_raises_and_each_excerpt_is_its_span(text: str, name: str) -> None:
    found = find_identifying(text, names=[name, "Berg"])
    for finding in found:
        assert text[finding.start : finding.end] == finding.excerpt and finding.excerpt
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=500))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    find_identifying(text, names=[text[:5]])
