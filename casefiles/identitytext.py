"""Finding text in a progress note that identifies someone, and saying which part and why.

Notes live in the notes store, which must name nobody (the seed: a casemanager's notes are anonymous). The
note form refuses a text for which ``find_identifying`` returns anything and shows each finding's excerpt
and reason, so the casemanager can rewrite that part. It is a pure function: the participant's names come
from the caller, read live from the identity store, and are compared in memory only, never kept.

Refused: an e-mail address; a Dutch phone number in any common notation (national, +31, 0031, with the
area code in brackets or the trunk 0 as "(0)"); a BSN (nine digits, also as 123.456.782 or 1234.56.782,
that pass the 11-proof); an IBAN of a country in ``IBAN_LENGTHS`` with the right length and a valid mod-97
checksum; a Dutch postcode together with a house number, in either order; the participant's own first or
last name (see ``find_names`` for when a name that is also an ordinary word counts).

Accepted, because they only look alike: nine digits that fail the 11-proof, dates (12-03-2024, 12.03.2024),
times, amounts, a four-digit number or a postcode on its own, a name that is also a word used as a word.

Every pattern is written so that the regex engine never backtracks more than a bounded number of steps
per position (no nested or adjacent unbounded quantifiers over overlapping classes): a hostile or pasted
text of many kilobytes costs linear time, not a stalled worker.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Kind(enum.StrEnum):
    EMAIL = "email"
    IBAN = "iban"
    PHONE = "phone"
    BSN = "bsn"
    POSTCODE = "postcode"
    NAME = "name"


REASONS: dict[Kind, Promise] = {
    Kind.EMAIL: _("This is an e-mail address, which identifies someone. Leave it out of the note."),
    Kind.IBAN: _("This is a bank account number (IBAN), which identifies someone. Leave it out of the note."),
    Kind.PHONE: _("This is a phone number, which identifies someone. Leave it out of the note."),
    Kind.BSN: _("This is a citizen service number (BSN). It may never be in a note."),
    Kind.POSTCODE: _("A postcode with a house number is an address. Leave it out of the note."),
    Kind.NAME: _("This is the participant's name. Refer to them without it."),
}
# When two findings overlap (the digits of an IBAN also look like a phone number), the earlier kind is kept.
PRIORITY = (Kind.EMAIL, Kind.IBAN, Kind.PHONE, Kind.BSN, Kind.POSTCODE, Kind.NAME)


@dataclass(frozen=True)
class Finding:
    """One identifying part of the text: what kind, where (``text[start:end]``) and why it is refused."""

    kind: Kind
    start: int
    end: int
    excerpt: str

    @property
    def reason(self) -> Promise:
        return REASONS[self.kind]


def find_identifying(text: str, *, names: Iterable[str] = ()) -> list[Finding]:
    """Every part of ``text`` that identifies someone, in text order, overlapping findings merged."""
    found = [
        *find_emails(text),
        *find_ibans(text),
        *find_phone_numbers(text),
        *find_bsns(text),
        *find_postcodes(text),
        *find_names(text, names=names),
    ]
    # Kept findings never overlap, so sorted by start their ends are sorted too: only the neighbours of a
    # new finding can overlap it (a bisection, not a comparison with every kept one).
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (PRIORITY.index(f.kind), f.start)):
        at = bisect.bisect_left(starts, finding.start)
        before_overlaps = at > 0 and kept[at - 1].end > finding.start
        after_overlaps = at < len(kept) and kept[at].start < finding.end
        if not before_overlaps and not after_overlaps:
            starts.insert(at, finding.start)
            kept.insert(at, finding)
    return kept


def _finding(kind: Kind, text: str, start: int, end: int) -> Finding:
    return Finding(kind=kind, start=start, end=end, excerpt=text[start:end])


def _scan(
    pattern: re.Pattern[str], text: str, accept: Callable[[re.Match[str]], int | None]
) -> Iterator[tuple[int, int]]:
    """The spans of matches ``accept`` keeps (it gives the end); after a rejection, look one place later.

    ``finditer`` would resume after a rejected match and so skip a real one it swallowed ("ab12 NL91..."),
    while every pattern here is bounded in length, so retrying from the next position stays linear.
    """
    position = 0
    while (match := pattern.search(text, position)) is not None:
        end = accept(match)
        if end is None:
            position = match.start() + 1
        else:
            yield match.start(), end
            position = end


# --- e-mail ---------------------------------------------------------------------------------------------

# The lookbehind lets a local part start only where a run of its characters starts, so a long run without
# an '@' is tried once, not once per character.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")


def find_emails(text: str) -> list[Finding]:
    """Addresses like jan.jansen@example.nl (a domain with at least one dot)."""
    return [_finding(Kind.EMAIL, text, start, end) for start, end in (_scan(_EMAIL, text, _email_end))]


def _email_end(match: re.Match[str]) -> int | None:
    return match.end() if not match.group().startswith(".") else None


# --- IBAN -----------------------------------------------------------------------------------------------

# The registry lengths of the countries a participant's account is likely to be in (SEPA and a few more).
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23, "GL": 18, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MA": 28, "MC": 27,
    "ME": 22, "MK": 19, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "RS": 22, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "SR": 20, "TR": 26, "UA": 29, "VA": 22, "XK": 20,
}  # fmt: skip
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]){11,30}")


def find_ibans(text: str) -> list[Finding]:
    """Account numbers like NL91 ABNA 0417 1643 00: the country's length and a valid mod-97 checksum."""
    return [_finding(Kind.IBAN, text, start, end) for start, end in (_scan(_IBAN, text, _iban_end))]


def _iban_end(match: re.Match[str]) -> int | None:
    # The pattern may run on into the next word ("NL91ABNA0417164300 en"): cut at the country's length.
    positions = [match.start() + i for i, char in enumerate(match.group()) if char != " "]
    compact = "".join(match.string[i] for i in positions).upper()
    length = IBAN_LENGTHS.get(compact[:2])
    if length is None or len(compact) < length:
        return None
    end = positions[length - 1] + 1
    if end < len(match.string) and match.string[end].isalnum():
        return None  # part of a longer token
    return end if is_valid_iban(compact[:length]) else None


def is_valid_iban(compact: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, the whole mod 97 is 1."""
    if not compact.isascii() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


# --- digit groups: phone numbers and BSNs ---------------------------------------------------------------

# A run of digits and the separators people put between them. One character class under one quantifier:
# linear. The groups inside are split out in Python, where the rules are easier to read than in a regex.
_DIGIT_RUN = re.compile(r"[+(]{0,2}[0-9][0-9()+ \t\u00a0./-]*")
_GROUP = re.compile(r"[0-9]+")
# Between two groups of one number: a few spaces, a hyphen, a dot, a slash or brackets ("(020) 123").
_MAX_SEPARATOR = 3
_DATE_SEPARATORS = frozenset("-./")


@dataclass(frozen=True)
class _Group:
    digits: str
    start: int  # where the number would start: including a '+' or '(' written right before the digits
    end: int
    international: bool  # written with a '+' before it


def _digit_chains(text: str) -> Iterator[list[_Group]]:
    """Runs of digit groups that could be one number: adjacent, with short separators between them."""
    for run in _DIGIT_RUN.finditer(text):
        chain: list[_Group] = []
        for group in _GROUP.finditer(text, run.start(), run.end()):
            start = group.start()
            # "+31" and "(020)" belong to the number; the bracket of "(06-12345678)" does not.
            closed = text[group.end() : group.end() + 1] == ")"
            while start > run.start() and (text[start - 1] == "+" or (closed and text[start - 1] == "(")):
                start -= 1
            group_value = _Group(
                digits=group.group(),
                start=start,
                end=group.end(),
                international="+" in text[start : group.start()],
            )
            if chain and group.start() - chain[-1].end > _MAX_SEPARATOR:
                yield chain
                chain = []
            chain.append(group_value)
        if chain:
            yield chain


def _separator(text: str, first: _Group, second: _Group) -> str:
    return text[first.end : second.start].strip(" \t\u00a0")


def _is_date_at(text: str, chain: list[_Group], i: int) -> bool:
    """dd-mm-yyyy, dd.mm.yyyy or dd/mm/yyyy starting at group i: a date, however phone-like its digits."""
    if i + 2 >= len(chain):
        return False
    day, month, year = chain[i : i + 3]
    first, second = _separator(text, day, month), _separator(text, month, year)
    return (
        len(day.digits) <= 2
        and len(month.digits) <= 2
        and len(year.digits) == 4
        and first == second
        and first in _DATE_SEPARATORS
    )


def _starts_a_word(text: str, position: int) -> bool:
    """Digits glued to letters (a reference like AB0612345678) are not a number written on its own."""
    return position == 0 or not text[position - 1].isalnum()


def _take_digits(chain: list[_Group], i: int, wanted: int, skip: int = 0) -> int | None:
    """The index of the group where exactly ``wanted`` digits (after ``skip`` leading ones) end, or None."""
    count = -skip
    for j in range(i, len(chain)):
        count += len(chain[j].digits)
        if count == wanted:
            return j
        if count > wanted:
            return None
    return None


def find_phone_numbers(text: str) -> list[Finding]:
    """Dutch numbers: 0 and nine digits, +31/0031 and nine, in any grouping (06-12345678, (020) 123 4567,
    +31 (0)20 123 4567, 0031612345678); service numbers 0800/0900/0906/0909 with four or seven digits."""
    found: list[Finding] = []
    for chain in _digit_chains(text):
        i = 0
        while i < len(chain):
            if _is_date_at(text, chain, i):
                i += 3
                continue
            last = _phone_end(text, chain, i)
            if last is None:
                i += 1
                continue
            found.append(_finding(Kind.PHONE, text, chain[i].start, chain[last].end))
            i = last + 1
    return found


def _phone_end(text: str, chain: list[_Group], i: int) -> int | None:
    group = chain[i]
    if not _starts_a_word(text, group.start):
        return None
    digits = "".join(g.digits for g in chain[i : i + 8])
    if (group.international and digits.startswith("31")) or digits.startswith("0031"):
        country = 2 if group.international else 4
        # "+31 (0)20 ..." and "+31 020 ...": the trunk 0 written after the country code is dropped.
        trunk = 1 if digits[country : country + 1] == "0" else 0
        return _take_digits(chain, i, 9, skip=country + trunk)
    if group.international or not digits.startswith("0") or digits.startswith("00"):
        return None
    if digits[:4] in {"0800", "0900", "0906", "0909"}:
        for wanted in (8, 11):
            last = _take_digits(chain, i, wanted)
            if last is not None:
                return last
        return None
    return _take_digits(chain, i, 10)


def passes_eleven_proof(digits: str) -> bool:
    """The BSN check: 9·d1 + 8·d2 + … + 2·d8 - 1·d9 is a multiple of 11 (and not all zeros)."""
    if len(digits) != 9 or not digits.isdigit() or not digits.isascii() or set(digits) == {"0"}:
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


_AMOUNT_BEFORE = re.compile(r"(?:€|eur|euro)[ \t\u00a0]{0,2}$", re.IGNORECASE)


def find_bsns(text: str) -> list[Finding]:
    """Nine digits passing the 11-proof, whole or grouped with dots, spaces or hyphens (123.456.782)."""
    found: list[Finding] = []
    for chain in _digit_chains(text):
        # "Op 12-03-2024 1 gesprek": 120320241 passes the 11-proof, but a date's digits are no BSN.
        in_dates = {j for i in range(len(chain)) if _is_date_at(text, chain, i) for j in range(i, i + 3)}
        for i, group in enumerate(chain):
            if group.international or not _starts_a_word(text, group.start) or i in in_dates:
                continue
            if _AMOUNT_BEFORE.search(text, max(0, group.start - 8), group.start):
                continue  # € 123.456.782 is an amount
            last = _take_digits(chain, i, 9)
            if last is None or in_dates.intersection(range(i, last + 1)):
                continue
            if any(len(_separator(text, a, b)) > 1 for a, b in itertools.pairwise(chain[i : last + 1])):
                continue
            if passes_eleven_proof("".join(g.digits for g in chain[i : last + 1])):
                found.append(_finding(Kind.BSN, text, group.start, chain[last].end))
    return found


# --- postcode and house number --------------------------------------------------------------------------

_POSTCODE = r"[1-9][0-9]{3}[ \t]?[A-Za-z]{2}(?![\w])"
_HOUSE_NUMBER = r"[0-9]{1,5}(?:[ \t]?-?[ \t]?[A-Za-z](?![\w]))?(?![\w])"
_GAP = r"[ \t]{0,3},?[ \t]{0,3}"
_POSTCODE_THEN_NUMBER = re.compile(rf"(?<![\w])(?P<postcode>{_POSTCODE}){_GAP}{_HOUSE_NUMBER}")
_NUMBER_THEN_POSTCODE = re.compile(rf"(?<![\w]){_HOUSE_NUMBER}{_GAP}(?P<postcode>{_POSTCODE})")
# Letter pairs that are never issued (SA, SD, SS); and, written in lower case, units and two-letter words
# that often stand between two numbers ("1200 km, 3", "tussen 1990 en 2000", "week 2 of 3").
_NOT_POSTCODE_LETTERS = frozenset({"SA", "SD", "SS"})
_WORDS_BETWEEN_NUMBERS = frozenset(
    {"km", "kg", "cm", "mm", "ml", "mg", "dl", "cl", "pk", "kw", "mb", "gb", "kb", "uu", "en", "of", "op",
     "in", "om", "te", "de", "is", "al", "nu", "zo", "ja", "na", "tm", "ca", "nr", "or", "to", "at", "on",
     "an", "as", "by", "it", "no", "so", "up", "vs", "pp", "ex", "vd"}
)  # fmt: skip


def find_postcodes(text: str) -> list[Finding]:
    """A postcode with a house number, either order: 1234 AB 12, 1234AB 12a, 1234 ab, 12, 12, 1234 AB."""
    spans = [
        *(_scan(_POSTCODE_THEN_NUMBER, text, _postcode_end)),
        *(_scan(_NUMBER_THEN_POSTCODE, text, _postcode_end)),
    ]
    return [_finding(Kind.POSTCODE, text, start, end) for start, end in sorted(set(spans))]


def _postcode_end(match: re.Match[str]) -> int | None:
    letters = match.group("postcode")[-2:]
    if letters.upper() in _NOT_POSTCODE_LETTERS or letters in _WORDS_BETWEEN_NUMBERS:
        return None
    return match.end()


# --- the participant's own names ------------------------------------------------------------------------

# Names that are also ordinary Dutch or English words. Such a name counts only when it is written with a
# capital and is not the first word of a sentence: "hij woont op een berg" and "Groot verschil met vorige
# week." are words, "ik sprak met Berg" is a name. Surnames that are not words (Bakker, Visser, Smit,
# Mulder, Jansen, de Vries) count in any case and in any place. This misses a common-word name written at
# the start of a sentence ("Roos belde."); refusing every sentence that starts with "Groot" or "Ben" would
# make notes about ordinary things impossible to write, and the casemanager sees the other findings.
COMMON_WORD_NAMES = frozenset(
    {
        # Dutch surnames that are words
        "berg", "bos", "dam", "groot", "hoek", "jong", "klein", "wit", "zee", "kok", "boer", "brink",
        "haan", "veen", "vos", "beek", "dijk", "kuiper", "molen", "meer", "laan", "bruin", "zwart", "lange",
        "graaf", "koning", "wolf", "poel", "heuvel", "vink", "duif", "kraai", "smid", "post",
        "hof", "kamp", "steen", "bron", "plas", "wal", "ven", "horst", "hout", "rood", "roos", "ridder",
        # Dutch first names that are words
        "ben", "wil", "job", "fleur", "iris", "merel", "mees", "lieve", "hoop", "lente", "zomer", "storm",
        # English names that are words
        "young", "green", "white", "brown", "black", "long", "rose", "may", "hope", "mark", "will",
        "bill", "grace", "joy", "faith", "rich", "sky", "summer", "april", "june", "hunter", "baker",
    }
)  # fmt: skip
# Prefixes of Dutch (and some other) surnames: "de Vries" is also found as "Vries", "van den Berg" as "Berg".
NAME_PREFIXES = frozenset(
    {"van", "de", "der", "den", "het", "t", "ter", "ten", "te", "op", "in", "von", "la", "le", "du", "da",
     "di", "del", "dos", "des", "el", "al", "bin", "ibn", "mc"}
)  # fmt: skip
# Letters, including combining accents written after their letter (e + U+0301 is é).
_WORD = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f])+")
# What may stand between the words of one name: "Jan-Willem", "O'Brien", "van der Berg".
_NAME_JOINER = re.compile("[ \t\u00a0'\u2019-]{1,3}")
_SENTENCE_END = frozenset(".!?:;\n•*")
# Spaces, quotes (also typographic: U+201C, U+2018), brackets and dashes (also U+2013) before a word.
_OPENERS = frozenset(" \t\u00a0\"'\u201c\u2018([-\u2013")


def fold(word: str) -> str:
    """Case- and accent-insensitive form: Zoë, zoe and ZOË fold alike."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True)
class _Word:
    folded: str
    start: int
    end: int


def _name_phrases(names: Iterable[str]) -> set[tuple[str, ...]]:
    """Each name as a sequence of folded words, and without its prefixes: "de Vries" also as "vries"."""
    phrases: set[tuple[str, ...]] = set()
    for name in names:
        words = tuple(fold(w.group()) for w in _WORD.finditer(name or ""))
        core = words
        while core and core[0] in NAME_PREFIXES and len(core) > 1:
            core = core[1:]
        for phrase in (words, core):
            # A single initial or a bare prefix ("de") is not a name anyone could be found by.
            if phrase and len("".join(phrase)) >= 2 and not all(w in NAME_PREFIXES for w in phrase):
                phrases.add(phrase)
    return phrases


def _is_sentence_start(text: str, position: int) -> bool:
    # Walks back over the openers only (not text[:position].rstrip(), which copies): linear over a text.
    i = position - 1
    while i >= 0 and text[i] in _OPENERS:
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END


def _counts_as_name(text: str, words: list[_Word], phrase: tuple[str, ...]) -> bool:
    """A name that is also a word counts only capitalised and not as a sentence's first word."""
    core = [(w, f) for w, f in zip(words, phrase, strict=True) if f not in NAME_PREFIXES] or list(
        zip(words, phrase, strict=True)
    )
    if not all(folded in COMMON_WORD_NAMES for _w, folded in core):
        return True
    first, _folded = core[0]
    return text[first.start].isupper() and not _is_sentence_start(text, first.start)


def find_names(text: str, *, names: Iterable[str]) -> list[Finding]:
    """The participant's own names as whole words, case- and accent-insensitive (see COMMON_WORD_NAMES)."""
    phrases = _name_phrases(names)
    if not phrases:
        return []
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], []).append(phrase)
    words = [_Word(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]
    found: list[Finding] = []
    covered = -1
    for i, word in enumerate(words):
        if word.start < covered:
            continue
        # Longest phrase first, so "van den Berg" is one finding rather than "Berg" inside it.
        for phrase in sorted(by_first.get(word.folded, ()), key=len, reverse=True):
            candidate = words[i : i + len(phrase)]
            if (
                len(candidate) == len(phrase)
                and all(w.folded == f for w, f in zip(candidate, phrase, strict=True))
                and all(
                    _NAME_JOINER.fullmatch(text, a.end, b.start) for a, b in itertools.pairwise(candidate)
                )
                and _counts_as_name(text, candidate, phrase)
            ):
                found.append(_finding(Kind.NAME, text, candidate[0].start, candidate[-1].end))
                covered = candidate[-1].end
                break
    return found
