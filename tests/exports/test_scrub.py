"""The PII scrubber against a labelled corpus (promise P7: recall ≥ 0.95, precision reported)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.exports.scrub import TOKENS, find_pii, scrub_text

ZW = "\u200b"  # zero-width space
ZWNJ = "\u200c"  # zero-width non-joiner

# (text, the PII substrings in it). Kosovo and Serbian forms first, in the three scripts people write.
LABELLED: list[tuple[str, list[str]]] = [
    # e-mail addresses
    ("Write to me at arben.krasniqi@gmail.com please", ["arben.krasniqi@gmail.com"]),
    ("Мој мејл је jovana.petrovic@yahoo.rs", ["jovana.petrovic@yahoo.rs"]),
    (f"email: ex{ZW}ample@mail.com", [f"ex{ZW}ample@mail.com"]),
    ("kontakt: drita [at] posta [dot] com", ["drita [at] posta [dot] com"]),
    ("milan(at)eunet(dot)rs javite se", ["milan(at)eunet(dot)rs"]),
    ("ｅｘａｍｐｌｅ＠ｍａｉｌ．ｃｏｍ", ["ｅｘａｍｐｌｅ＠ｍａｉｌ．ｃｏｍ"]),
    ("reach me: name at domain dot com", ["name at domain dot com"]),
    ("my email is ARBEN@GMAIL.COM", ["ARBEN@GMAIL.COM"]),
    ("Pišite na đorđe.petrović@mail.rs", ["đorđe.petrović@mail.rs"]),
    (f"shkruani: besa{ZWNJ}.h{ZW}@outlook{ZW}.com", [f"besa{ZWNJ}.h{ZW}@outlook{ZW}.com"]),
    # phone numbers: +383 and +381, 00 forms, local Kosovo and Serbian forms
    ("Tel: +383 44 123 456", ["+383 44 123 456"]),
    (f"+383{ZWNJ}44 123 456 call anytime", [f"+383{ZWNJ}44 123 456"]),
    ("Мој број је +381 64 123 4567", ["+381 64 123 4567"]),
    ("+381641234567", ["+381641234567"]),
    ("00383 49 555 666", ["00383 49 555 666"]),
    ("0038349123456 is my whatsapp", ["0038349123456"]),
    ("+ 383 44 123 456", ["+ 383 44 123 456"]),
    ("+383-44-123-456", ["+383-44-123-456"]),
    ("thirrni 044 123 456", ["044 123 456"]),
    ("049/123-456 pas orës 5", ["049/123-456"]),
    ("045-987-654", ["045-987-654"]),
    ("zovite 064 123 4567", ["064 123 4567"]),
    ("063/123-456 posle podne", ["063/123-456"]),
    ("Beograd fiksni: 011 123 4567", ["011 123 4567"]),
    ("Prishtina office 038 123 456", ["038 123 456"]),
    ("(044) 123-456", ["(044) 123-456"]),
    ("tel.044.123.456", ["044.123.456"]),
    ("My number is ０４４ １２３ ４５６", ["０４４ １２３ ４５６"]),
    (f"04{ZW}4 12{ZW}3 456", [f"04{ZW}4 12{ZW}3 456"]),
    ("+49 151 23456789 (Germany)", ["+49 151 23456789"]),
    ("Звати на 060/555-12-34", ["060/555-12-34"]),
    # URLs
    ("See https://www.facebook.com/arben.k for details", ["https://www.facebook.com/arben.k"]),
    ("www.kallxo.com/my-story", ["www.kallxo.com/my-story"]),
    ("my blog: arbenk.blogspot.com", ["arbenk.blogspot.com"]),
    ("http://example.rs/путања?x=1", ["http://example.rs/путања?x=1"]),
    ("Više na instagram.com/jovana_p.", ["instagram.com/jovana_p"]),
    (f"https://t{ZW}.me/joinchat/abc", [f"https://t{ZW}.me/joinchat/abc"]),
    # IBANs and bank accounts
    ("IBAN: XK05 1212 0123 4567 8906", ["XK05 1212 0123 4567 8906"]),
    ("RS35260005601001611379 for donations", ["RS35260005601001611379"]),
    ("uplata na RS35 2600 0560 1001 6113 79", ["RS35 2600 0560 1001 6113 79"]),
    ("AL47 2121 1009 0000 0002 3569 8741", ["AL47 2121 1009 0000 0002 3569 8741"]),
    ("račun 160-5100100000000-11", ["160-5100100000000-11"]),
    # personal numbers: Serbian JMBG (13 digits), Kosovo personal number (10 digits)
    ("ЈМБГ 0101990710006", ["0101990710006"]),
    ("JMBG: 1505985715123", ["1505985715123"]),
    ("numri personal 1234567890", ["1234567890"]),
    (f"ID 1{ZW}234567890", [f"1{ZW}234567890"]),
    # harder forms, written without tuning the patterns to them first
    ("javi se na 0641234567", ["0641234567"]),
    ("Kontakt 062-123-45-67", ["062-123-45-67"]),
    ("posta: arben_k at yahoo dot com", ["arben_k at yahoo dot com"]),
    ("IBAN rs35 2600 0560 1001 6113 79", ["rs35 2600 0560 1001 6113 79"]),
    ("+383 (0)44 123 456", ["+383 (0)44 123 456"]),
    ("https://bit.ly/3xYz", ["https://bit.ly/3xYz"]),
    ("my phone: 44 123 456", ["44 123 456"]),
    ("tel 38344123456", ["38344123456"]),
    ("shkruaj arben@gmail", ["arben@gmail"]),
    ("mob. 065 8 123 456", ["065 8 123 456"]),
    ("Profili: facebook.com/profile.php?id=100012345678901", ["facebook.com/profile.php?id=100012345678901"]),
    ("me: arben (at) gmail (dot) com", ["arben (at) gmail (dot) com"]),
    ("Tel/Viber +381(0)11 3344 556", ["+381(0)11 3344 556"]),
    ("see my site arben.dev", ["arben.dev"]),  # known miss: a TLD that is also a word, without a path
    # several at once
    ("Call +383 44 123 456 or mail a.b@c.org", ["+383 44 123 456", "a.b@c.org"]),
    ("e-mail: info@ngo-kosovo.org; tel. 038/222-333", ["info@ngo-kosovo.org", "038/222-333"]),
    # no PII: numbers, dates, amounts, references, words that look like the patterns
    ("Dialogue started in 2011 and the Brussels agreement was in 2013.", []),
    ("10 000 people protested on 17.02.2008", []),
    ("on 01.02.2022 the licence plates changed", []),
    ("Marrëveshja e 19.04.2013 nuk u zbatua", []),
    ("Resolution 1244 (1999) of the Security Council", []),
    ("Only 5% trust the process; 95% do not.", []),
    ("I met them at school, then at work.", []),
    ("Price rose from 0.50 to 1.20 euro", []),
    ("Article 370, points 1-3", []),
    ("Zajednica srpskih opština (ZSO), 2013–2023", []),
    ("We want peace.Now!", []),
    ("Prishtinë — Mitrovicë: 40 km", []),
    ("Score 7/10, maybe 8/10", []),
    ("Call the 112 emergency number", []),
    ("EU@30 celebration was nice", []),
    ("The 2022–2023 period, 3 rounds, 12 meetings", []),
    ("Ja sam iz Novog Pazara, 36300", []),
    ("Kodi postar 10000 Prishtinë", []),
    ("Ukradeno je 1.000.000.000 dinara", []),
    ("Version 2.0.1 of the law", []),
    ("Radno vreme 08:30-16:00", []),
    ("😀👩🏽‍🌾 paqe, мир, mir", []),
    ("Приштина, Косово; Ђорђе Љубичић Њ Џ ђ ћ ж", []),
    ("Prishtinë, Mitrovicë, Gjakovë — çka, Ç, Ë, xh, zh", []),
    ('=HYPERLINK("x","click") is not contact data', []),
    ("Erdha vonë.Me të mirë, Besa", []),
    ("It was done.It worked in the end", []),
    ("Ne znam tako.se ne radi", []),
    ("ISBN 978-86-7558-123-4", []),
    ("Buxheti 45 000 000 euro", []),
    ("Tel Aviv and Beograd, 2019", []),
    ("U 2019 0.5 miliona ljudi", []),
    ("Rezultati 2:1, 0:3, 1:1", []),
]


def _covered(matches: list, start: int, end: int) -> bool:
    return any(m.start <= start and end <= m.end for m in matches)


def _scores() -> tuple[float, float, list[str], list[str]]:
    items = recalled = 0
    true_matches = all_matches = 0
    missed: list[str] = []
    false: list[str] = []
    for text, pii in LABELLED:
        matches = find_pii(text)
        spans = []
        for item in pii:
            start = text.index(item)
            spans.append((start, start + len(item)))
            items += 1
            if _covered(matches, start, start + len(item)):
                recalled += 1
            else:
                missed.append(item)
        for match in matches:
            all_matches += 1
            if any(match.start < end and start < match.end for start, end in spans):
                true_matches += 1
            else:
                false.append(text[match.start : match.end])
    return recalled / items, true_matches / all_matches, missed, false


def test_the_corpus_is_large_enough_and_labelled_consistently():
    assert len(LABELLED) >= 50
    assert sum(1 for _text, pii in LABELLED if pii) >= 40
    assert sum(1 for _text, pii in LABELLED if not pii) >= 20
    for text, pii in LABELLED:
        for item in pii:
            assert item in text


def test_recall_is_at_least_95_percent_and_precision_is_reported(record_property: pytest.RecordProperty):
    recall, precision, missed, false = _scores()
    record_property("pii_recall", round(recall, 3))
    record_property("pii_precision", round(precision, 3))
    print(f"PII scrubber on {len(LABELLED)} labelled strings: recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.95, f"missed: {missed}"
    assert precision >= 0.9, f"false positives: {false}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Call +383{ZWNJ}44 123 456 or ex{ZW}ample@mail.com", "Call [phone] or [email]"),
        ("IBAN XK05 1212 0123 4567 8906.", "IBAN [iban]."),
        ("See www.kallxo.com/story, thanks", "See [url], thanks"),
        ("JMBG 0101990710006 i tel 064 123 4567", "JMBG [personal-number] i tel [phone]"),
        ("račun 160-5100100000000-11", "račun [bank-account]"),
        ("numri 1234567890", "numri [personal-number]"),
    ],
)
def test_scrub_replaces_each_kind_with_its_token(text: str, expected: str):
    assert scrub_text(text) == expected


def test_text_around_a_match_is_left_byte_for_byte():
    family = "👩🏽‍🌾👨‍👩‍👧"  # zero-width joiners inside emoji sequences must survive
    text = f"{family} Ђорђе: a{ZW}b@mail.com — Prishtinë"
    assert scrub_text(text) == f"{family} Ђорђе: [email] — Prishtinë"


def test_tokens_are_stable_and_clean_text_is_untouched():
    assert scrub_text("Nothing to hide here, 2013.") == "Nothing to hide here, 2013."
    scrubbed = scrub_text("mail a@b.com, phone 044 123 456")
    assert scrub_text(scrubbed) == scrubbed
    assert set(TOKENS) == {"email", "url", "iban", "bank_account", "phone", "personal_number"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_text_gives_ordered_disjoint_matches_and_never_raises(text: str):
    matches = find_pii(text)
    previous_end = 0
    for match in matches:
        assert previous_end <= match.start < match.end <= len(text)
        previous_end = match.end
    scrubbed = scrub_text(text)
    if not matches:
        assert scrubbed == text


@pytest.mark.parametrize(
    "text",
    ["a" * 5000 + ".", "a." * 2500, "0" * 5000, "1." * 2500, "http://" + "a" * 4990, "a@" + "a." * 2499, "+1" * 2500],
)
def test_pathological_answers_cost_linear_time(text: str):
    """A 5,000-character answer built to make the patterns backtrack must not stall an export."""
    started = time.perf_counter()
    scrub_text(text)
    assert time.perf_counter() - started < 0.1
