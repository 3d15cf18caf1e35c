"""XLSForm import and export: real-world-style workbooks, round trips, and broken or hostile files."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyxform.xls2xform import convert

from survey.errors import DefinitionInvalidError
from survey.questionnaires.definition import iter_questions, validate_definition
from survey.questionnaires.services import SHIPPED_DEFINITIONS
from survey.questionnaires.xlsform import MAX_BYTES, MAX_ROWS, definition_from_xlsform, xlsform_from_definition
from tests.factories import all_types_definition

FOUR = ["English (en)", "Shqip (sq)", "Srpski (sr-Latn)", "Српски (sr-Cyrl)"]


def workbook(
    survey: list[list[Any]],
    choices: list[list[Any]] | None = None,
    settings_rows: list[list[Any]] | None = None,
) -> bytes:
    """An .xlsx with the given sheets, as KoboToolbox or Excel would save it."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    for name, rows in (("choices", choices), ("settings", settings_rows)):
        if rows is not None:
            extra = book.create_sheet(name)
            for row in rows:
                extra.append(row)
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def problems_of(data: Any) -> list[str]:
    with pytest.raises(DefinitionInvalidError) as info:
        definition_from_xlsform(data)
    problems = info.value.errors["problems"]
    assert problems and all(isinstance(p, str) for p in problems)
    return problems


def questions_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {question["code"]: question for _section, question in iter_questions(definition)}


def shipped() -> dict[str, Any]:
    return json.loads((SHIPPED_DEFINITIONS / "dialogue_2022.json").read_text(encoding="utf-8"))


# -- three workbooks in the style staff write them ------------------------------------------------

KOBO_SURVEY = [
    [
        "type",
        "name",
        *(f"label::{lang}" for lang in FOUR),
        *(f"hint::{lang}" for lang in FOUR),
        "required",
        "relevant",
        "constraint",
        "constraint_message::English (en)",
        "appearance",
        "$kuid",
    ],
    ["start", "start", *[None] * 8, None, None, None, None, None, "k1"],
    ["end", "end", *[None] * 8, None, None, None, None, None, "k2"],
    [
        "select_one yes_no",
        "consent",
        "Do you agree to take part in this anonymous survey?",
        "A pajtoheni të merrni pjesë në këtë anketë anonime?",
        "Da li pristajete da učestvujete u ovoj anonimnoj anketi?",
        "Да ли пристајете да учествујете у овој анонимној анкети?",
        *[None] * 4,
        "yes",
        None,
        None,
        None,
        None,
        "k3",
    ],
    [
        "begin_group",
        "safety",
        "Safety",
        "Siguria",
        "Bezbednost",
        "Безбедност",
        *[None] * 4,
        None,
        None,
        None,
        None,
        "field-list",
    ],
    [
        "note",
        "safety_intro",
        "These questions are about your neighbourhood.",
        "Këto pyetje kanë të bëjnë me lagjen tuaj.",
        "Ova pitanja se odnose na Vaše naselje.",
        "Ова питања се односе на Ваше насеље.",
    ],
    [
        "select_one safe4",
        "feel_safe",
        "How safe do you feel walking alone at night?",
        "Sa të sigurt ndiheni kur ecni vetëm natën?",
        "Koliko se bezbedno osećate kada noću šetate sami?",
        "Колико се безбедно осећате када ноћу шетате сами?",
        *[None] * 4,
        "true",
        None,
        None,
        None,
        "likert",
    ],
    [
        "select_one yes_no_dk",
        "incident",
        "In the past year, have you witnessed an incident here?",
        "Në vitin e kaluar, a keni qenë dëshmitar i ndonjë incidenti këtu?",
        "Da li ste u protekloj godini bili svedok nekog incidenta ovde?",
        "Да ли сте у протеклој години били сведок неког инцидента овде?",
        *[None] * 4,
        "TRUE()",
    ],
    [
        "select_multiple incident_types",
        "incident_kinds",
        "What kind of incident?",
        "Çfarë lloj incidenti?",
        "Kakav incident?",
        "Какав инцидент?",
        "Select up to three.",
        "Zgjidhni deri në tre.",
        "Izaberite najviše tri.",
        "Изаберите највише три.",
        None,
        "${incident} = 'yes'",
        "count-selected(.) >= 1 and count-selected(.) <= 3",
        "Select one to three answers",
    ],
    [
        "text",
        "incident_details",
        "Please describe what happened.",
        "Ju lutemi përshkruani çfarë ndodhi.",
        "Molimo opišite šta se desilo.",
        "Молимо опишите шта се десило.",
        *[None] * 4,
        None,
        "selected(${incident_kinds}, 'other')",
        "string-length(.) <= 500",
        None,
        "multiline",
    ],
    ["end_group", "safety"],
    ["begin_group", "institutions", "Institutions", "Institucionet", "Institucije", "Институције"],
    [
        "begin_group",
        "trust_grid",
        "How much do you trust…",
        "Sa shumë u besoni…",
        "Koliko verujete…",
        "Колико верујете…",
        *[None] * 4,
        None,
        None,
        None,
        None,
        "table-list",
    ],
    ["select_one trust4", "trust_header", *[None] * 8, None, None, None, None, "label"],
    [
        "select_one trust4",
        "police",
        "the police",
        "policisë",
        "policiji",
        "полицији",
        *[None] * 4,
        "yes",
        *[None] * 3,
        "list-nolabel",
    ],
    [
        "select_one trust4",
        "courts",
        "the courts",
        "gjykatave",
        "sudovima",
        "судовима",
        *[None] * 4,
        "yes",
        *[None] * 3,
        "list-nolabel",
    ],
    [
        "select_one trust4",
        "municipality",
        "your municipality",
        "komunës suaj",
        "Vašoj opštini",
        "Вашој општини",
        *[None] * 4,
        "yes",
        *[None] * 3,
        "list-nolabel",
    ],
    ["end_group"],
    ["end_group"],
    ["begin_group", "about", "About you", "Rreth jush", "O Vama", "О Вама"],
    [
        "integer",
        "age",
        "How old are you?",
        "Sa vjeç jeni?",
        "Koliko imate godina?",
        "Колико имате година?",
        *[None] * 4,
        "yes",
        None,
        ". >= 18 and . <= 120",
        "You must be 18 or older",
    ],
    ["end_group"],
]

KOBO_CHOICES = [
    ["list_name", "name", *(f"label::{lang}" for lang in FOUR)],
    ["yes_no", "yes", "Yes", "Po", "Da", "Да"],
    ["yes_no", "no", "No", "Jo", "Ne", "Не"],
    ["yes_no_dk", "yes", "Yes", "Po", "Da", "Да"],
    ["yes_no_dk", "no", "No", "Jo", "Ne", "Не"],
    ["yes_no_dk", "dont_know", "Don't know", "Nuk e di", "Ne znam", "Не знам"],
    ["safe4", "very_unsafe", "Very unsafe", "Shumë e pasigurt", "Veoma nebezbedno", "Веома небезбедно"],
    ["safe4", "unsafe", "Unsafe", "E pasigurt", "Nebezbedno", "Небезбедно"],
    ["safe4", "safe", "Safe", "E sigurt", "Bezbedno", "Безбедно"],
    ["safe4", "very_safe", "Very safe", "Shumë e sigurt", "Veoma bezbedno", "Веома безбедно"],
    ["safe4", "prefer_not_to_say", "Prefer not to say", "Nuk dua të them", "Ne želim da kažem", "Не желим да кажем"],
    ["incident_types", "theft", "Theft", "Vjedhje", "Krađa", "Крађа"],
    ["incident_types", "violence", "Violence", "Dhunë", "Nasilje", "Насиље"],
    ["incident_types", "hate_speech", "Hate speech", "Gjuhë urrejtjeje", "Govor mržnje", "Говор мржње"],
    ["incident_types", "other", "Other", "Tjetër", "Drugo", "Друго"],
    ["trust4", "none", "Not at all", "Aspak", "Nimalo", "Нимало"],
    ["trust4", "little", "A little", "Pak", "Malo", "Мало"],
    ["trust4", "some", "Somewhat", "Disi", "Donekle", "Донекле"],
    ["trust4", "full", "Fully", "Plotësisht", "Potpuno", "Потпуно"],
    ["trust4", "dont_know", "Don't know", "Nuk e di", "Ne znam", "Не знам"],
]

KOBO_SETTINGS = [
    ["form_title", "form_id", "version", "default_language", *(f"questionnaire_title::{lang}" for lang in FOUR[1:])],
    [
        "Community safety 2024",
        "community_safety_2024",
        "2024061001",
        "English (en)",
        "Siguria në komunitet 2024",
        "Bezbednost u zajednici 2024",
        "Безбедност у заједници 2024",
    ],
]


def test_kobo_style_workbook_with_four_languages_groups_likert_and_table_list_matrix():
    raw = definition_from_xlsform(workbook(KOBO_SURVEY, KOBO_CHOICES, KOBO_SETTINGS))
    definition = validate_definition(raw, require_complete=True)

    assert definition["code"] == "community_safety_2024"
    assert definition["default_language"] == "en"
    assert definition["languages"] == [
        {"code": "en", "name": "English"},
        {"code": "sq", "name": "Shqip"},
        {"code": "sr-Latn", "name": "Srpski"},
        {"code": "sr-Cyrl", "name": "Српски"},
    ]
    assert definition["title"]["en"] == "Community safety 2024"
    assert definition["title"]["sr-Cyrl"] == "Безбедност у заједници 2024"
    # The consent question left its row and became the definition's consent; start/end rows are gone.
    consent = definition["consent"]
    assert consent["code"] == "consent" and consent["required"] is True
    assert consent["terminate_if"] == {"question": "consent", "operator": "in", "values": ["no"]}
    assert [s["code"] for s in definition["sections"]] == ["safety", "institutions", "about"]
    safety = definition["sections"][0]
    assert safety["description"]["sr-Cyrl"] == "Ова питања се односе на Ваше насеље."
    assert [q["code"] for q in safety["questions"]] == ["feel_safe", "incident", "incident_kinds", "incident_details"]

    questions = questions_of(definition)
    feel_safe = questions["feel_safe"]
    assert feel_safe["type"] == "likert" and feel_safe["required"] is True
    assert [(p["code"], p["value"]) for p in feel_safe["scale"]["points"]] == [
        ("very_unsafe", 1),
        ("unsafe", 2),
        ("safe", 3),
        ("very_safe", 4),
    ]
    assert [o["code"] for o in feel_safe["scale"]["non_substantive"]] == ["prefer_not_to_say"]
    assert feel_safe["scale"]["code"] == "safe4"

    incident = questions["incident"]
    assert incident["type"] == "single_choice" and incident["required"] is True
    assert [(o["code"], o["non_substantive"]) for o in incident["options"]] == [
        ("yes", False),
        ("no", False),
        ("dont_know", True),
    ]
    kinds = questions["incident_kinds"]
    assert kinds["type"] == "multiple_choice" and kinds["required"] is False
    assert (kinds["min_choices"], kinds["max_choices"]) == (1, 3)
    assert kinds["display_if"] == {"question": "incident", "operator": "in", "values": ["yes"]}
    assert kinds["help"]["sq"] == "Zgjidhni deri në tre."
    details = questions["incident_details"]
    assert details["type"] == "text" and details["multiline"] is True and details["max_length"] == 500
    assert details["display_if"] == {"question": "incident_kinds", "operator": "in", "values": ["other"]}

    grid = questions["trust_grid"]
    assert grid["type"] == "matrix" and grid["required"] is True
    assert [r["code"] for r in grid["rows"]] == ["police", "courts", "municipality"]  # no header row
    assert grid["rows"][2]["label"]["sr-Latn"] == "Vašoj opštini"
    assert [p["code"] for p in grid["scale"]["points"]] == ["none", "little", "some", "full"]
    assert [o["code"] for o in grid["scale"]["non_substantive"]] == ["dont_know"]

    age = questions["age"]
    assert age["type"] == "number" and age["integer"] is True
    assert (age["min"], age["max"]) == (18, 120)


def test_odk_style_workbook_with_bare_label_column_and_ungrouped_questions():
    survey = [
        ["type", "name", "label", "label::sq", "hint", "hint::sq", "required", "relevant", "constraint", "parameters"],
        ["select_one yn", "uses_services", "Do you use municipal services?", "A përdorni shërbimet komunale?"],
        [
            "select_multiple services",
            "services",
            "Which services?",
            "Cilat shërbime?",
            None,
            None,
            True,
            "${uses_services} = 'yes'",
            "count-selected(.) >= 1",
        ],
        [
            "select_one satisfaction",
            "satisfaction",
            "How satisfied are you?",
            "Sa të kënaqur jeni?",
            None,
            None,
            None,
            "not(selected(${services}, 'none')) and ${uses_services} != 'no'",
        ],
        [
            "text",
            "why_unhappy",
            "Why?",
            "Pse?",
            None,
            None,
            None,
            "${satisfaction} = 'low' or ${satisfaction} = 'very_low' or selected(${services}, 'other')",
        ],
        ["begin_group", "spending", "Municipal spending", "Shpenzimet komunale"],
        [
            "rank priorities",
            "priorities",
            "Rank these priorities",
            "Renditni këto përparësi",
            "Most important first",
            "Më e rëndësishmja e para",
        ],
        [
            "range",
            "fairness",
            "How fair is the budget? (0-10)",
            "Sa i drejtë është buxheti? (0-10)",
            None,
            None,
            "yes",
            None,
            None,
            "start=0 end=10 step=1",
        ],
        [
            "decimal",
            "monthly_spend",
            "How much do you spend on fees each month (EUR)?",
            "Sa shpenzoni për tarifa çdo muaj (EUR)?",
            None,
            None,
            None,
            None,
            ". >= 0 and . <= 1000.5",
        ],
        ["end_group"],
    ]
    choices = [
        ["list name", "name", "label", "label::sq"],
        ["yn", "yes", "Yes", "Po"],
        ["yn", "no", "No", "Jo"],
        ["services", "water", "Water", "Uji"],
        ["services", "waste", "Waste collection", "Mbledhja e mbeturinave"],
        ["services", "other", "Other", "Tjetër"],
        ["services", "none", "None of these", "Asnjë nga këto"],
        ["satisfaction", "very_low", 1, 1],  # labels typed as numbers in the sheet
        ["satisfaction", "low", 2, 2],
        ["satisfaction", "high", 3, 3],
        ["priorities", "roads", "Roads", "Rrugët"],
        ["priorities", "schools", "Schools", "Shkollat"],
        ["priorities", "health", "Health", "Shëndetësia"],
    ]
    settings_rows = [["form_id", "form_title"], ["municipal_services", "Municipal services"]]
    raw = definition_from_xlsform(workbook(survey, choices, settings_rows))
    # The Albanian title is missing (a draft); everything else is complete.
    definition = validate_definition(raw, require_complete=False)

    assert definition["default_language"] == "en"
    assert definition["languages"] == [{"code": "en", "name": "English"}, {"code": "sq", "name": "Shqip"}]
    # Questions before the first group go into a default section, titled in each language.
    main, spending = definition["sections"]
    assert main["code"] == "main" and main["title"] == {"en": "Questions", "sq": "Pyetjet"}
    assert [q["code"] for q in main["questions"]] == ["uses_services", "services", "satisfaction", "why_unhappy"]
    questions = questions_of(definition)
    assert questions["services"]["required"] is True and questions["services"]["min_choices"] == 1
    assert questions["satisfaction"]["options"][0]["label"] == {"en": "1", "sq": "1"}
    assert questions["satisfaction"]["display_if"] == {
        "all": [
            {"question": "services", "operator": "not_in", "values": ["none"]},
            {"question": "uses_services", "operator": "not_in", "values": ["no"]},
        ]
    }
    # Two tests of one question joined by "or" become one "in" condition.
    assert questions["why_unhappy"]["display_if"] == {
        "any": [
            {"question": "satisfaction", "operator": "in", "values": ["low", "very_low"]},
            {"question": "services", "operator": "in", "values": ["other"]},
        ]
    }
    assert spending["code"] == "spending" and "description" not in spending
    assert questions["priorities"]["type"] == "ranking"
    assert questions["priorities"]["help"]["sq"] == "Më e rëndësishmja e para"
    assert [o["code"] for o in questions["priorities"]["options"]] == ["roads", "schools", "health"]
    assert questions["fairness"]["type"] == "rating" and questions["fairness"]["required"] is True
    assert questions["fairness"]["range"] == {"min": 0, "max": 10, "step": 1}
    spend = questions["monthly_spend"]
    assert spend["type"] == "number" and spend["integer"] is False and spend["max"] == 1000.5


def test_serbian_first_workbook_with_consent_column_field_list_matrix_and_extra_columns():
    langs = ["Srpski (sr-Latn)", "Српски (sr-Cyrl)", "Shqip (sq)", "English (en)"]
    head = ["type", "name", *(f"label::{lang}" for lang in langs), "required", "relevant", "appearance"]
    head += ["consent", "terminate_if", "demographic", "randomize"]

    def row(kind, name=None, sr=None, cy=None, sq=None, en=None, *rest):
        return [kind, name, sr, cy, sq, en, *rest]

    survey = [
        head,
        row(
            "select_one da_ne",
            "pristanak",
            "Da li pristajete?",
            "Да ли пристајете?",
            "A pajtoheni?",
            "Do you agree?",
            None,
            None,
            None,
            "yes",
            "${pristanak} = 'ne'",
        ),
        row("begin_group", "dijalog", "Dijalog", "Дијалог", "Dialogu", "The dialogue", None, "${pristanak} = 'da'"),
        row(
            "select_multiple izvori",
            "izvori_info",
            "Odakle se informišete?",
            "Одакле се информишете?",
            "Nga informoheni?",
            "Where do you get information?",
            "yes",
            None,
            None,
            None,
            None,
            None,
            "yes",
        ),
        row(
            "begin_group",
            "stavovi",
            "Koliko se slažete?",
            "Колико се слажете?",
            "Sa pajtoheni?",
            "Do you agree?",
            None,
            None,
            "field-list",
        ),
        row(
            "select_one slaganje",
            "korist",
            "Dijalog koristi građanima",
            "Дијалог користи грађанима",
            "Dialogu u shërben qytetarëve",
            "The dialogue serves citizens",
        ),
        row(
            "select_one slaganje",
            "transparentnost",
            "Proces je transparentan",
            "Процес је транспарентан",
            "Procesi është transparent",
            "The process is transparent",
        ),
        row("end_group"),
        row(
            "text",
            "poruka",
            "Vaša poruka",
            "Ваша порука",
            "Mesazhi juaj",
            "Your message",
            None,
            "selected(${izvori_info}, 'tv') or selected(${izvori_info}, 'internet')",
        ),
        row("end_group"),
        row("begin_group", "o_vama", "O Vama", "О Вама", "Rreth jush", "About you"),
        row(
            "select_one zajednica",
            "zajednica",
            "Zajednica",
            "Заједница",
            "Komuniteti",
            "Community",
            "yes",
            None,
            None,
            None,
            None,
            "yes",
        ),
        row("end_group"),
    ]

    def choice(list_name, name, sr, cy, sq, en, *rest):
        return [list_name, name, sr, cy, sq, en, *rest]

    choices = [
        ["list_name", "name", *(f"label::{lang}" for lang in langs), "non_substantive", "exclusive", "pin_last"],
        choice("da_ne", "da", "Da", "Да", "Po", "Yes"),
        choice("da_ne", "ne", "Ne", "Не", "Jo", "No"),
        choice("izvori", "tv", "Televizija", "Телевизија", "Televizioni", "Television"),
        choice("izvori", "internet", "Internet", "Интернет", "Interneti", "Internet"),
        choice("izvori", "nijedno", "Nijedno", "Ниједно", "Asnjë", "None", None, "yes", "yes"),
        choice("slaganje", "ne_slazem", "Ne slažem se", "Не слажем се", "Nuk pajtohem", "Disagree"),
        choice("slaganje", "slazem", "Slažem se", "Слажем се", "Pajtohem", "Agree"),
        choice("slaganje", "bez_odgovora", "Bez odgovora", "Без одговора", "Pa përgjigje", "No answer", "yes"),
        choice("zajednica", "srpska", "Srpska", "Српска", "Serbe", "Serb"),
        choice("zajednica", "albanska", "Albanska", "Албанска", "Shqiptare", "Albanian"),
        choice(
            "zajednica",
            "ne_zelim",
            "Ne želim da kažem",
            "Не желим да кажем",
            "Nuk dua të them",
            "Prefer not to say",
            "yes",
        ),
    ]
    settings_rows = [
        ["form_id", "form_title", "default_language"],
        ["glas_gradjana", "Glas građana", "Srpski (sr-Latn)"],
    ]
    raw = definition_from_xlsform(workbook(survey, choices, settings_rows))
    with pytest.raises(DefinitionInvalidError) as incomplete:
        validate_definition(raw, require_complete=True)
    assert set(incomplete.value.errors["problems"]) == {
        f"title.{tag}: missing translation" for tag in ("sr-Cyrl", "sq", "en")
    }
    definition = validate_definition(raw, require_complete=False)

    assert definition["default_language"] == "sr-Latn"
    assert [lang["code"] for lang in definition["languages"]] == ["sr-Latn", "sr-Cyrl", "sq", "en"]
    assert definition["title"] == {"sr-Latn": "Glas građana"}
    consent = definition["consent"]
    assert consent["code"] == "pristanak" and consent["required"] is True
    assert consent["terminate_if"] == {"question": "pristanak", "operator": "in", "values": ["ne"]}

    questions = questions_of(definition)
    group_condition = {"question": "pristanak", "operator": "in", "values": ["da"]}
    # The group's relevant applies to every question inside it, combined with the question's own.
    sources = questions["izvori_info"]
    assert sources["display_if"] == group_condition
    assert sources["randomize_options"] is True and sources["required"] is True
    assert [(o["code"], o["exclusive"], o["pin_last"]) for o in sources["options"]][-1] == ("nijedno", True, True)
    assert questions["poruka"]["display_if"] == {
        "all": [group_condition, {"question": "izvori_info", "operator": "in", "values": ["tv", "internet"]}]
    }
    matrix = questions["stavovi"]
    assert matrix["type"] == "matrix" and matrix["display_if"] == group_condition
    assert matrix["text"]["sr-Cyrl"] == "Колико се слажете?"
    assert [r["code"] for r in matrix["rows"]] == ["korist", "transparentnost"]
    assert [(p["code"], p["value"]) for p in matrix["scale"]["points"]] == [("ne_slazem", 1), ("slazem", 2)]
    assert [o["code"] for o in matrix["scale"]["non_substantive"]] == ["bez_odgovora"]
    community = questions["zajednica"]
    assert community["demographic"] is True and community["required"] is True
    assert [o["code"] for o in community["options"] if o["non_substantive"]] == ["ne_zelim"]


# -- round trips and the exported workbook ------------------------------------------------------------


@pytest.mark.parametrize("make", [shipped, all_types_definition], ids=["dialogue_2022", "all_types"])
def test_round_trip_gives_an_equal_definition(make):
    definition = make()
    data = xlsform_from_definition(definition)
    assert data[:2] == b"PK"
    assert validate_definition(definition_from_xlsform(data)) == validate_definition(definition)


def test_exported_workbook_is_an_xlsform_that_pyxform_accepts():
    """KoboToolbox and ODK can use the export: pyxform converts it, with only its (wrong) warning on sr-Latn/sr-Cyrl."""
    warnings: list[str] = []
    result = convert(xlsform=xlsform_from_definition(shipped()), warnings=warnings, file_type=".xlsx")
    # The display logic and the limits travel as standard XLSForm, so ODK apps apply them too.
    assert (
        '<bind nodeset="/data/s1_awareness/agreements_known" type="string" '
        'relevant=" /data/s1_awareness/agreements_heard  = \'yes\'" constraint="count-selected(.) &gt;= 1"/>'
    ) in result.xform
    assert len(warnings) == 1 and "sr-Latn" in warnings[0] and "sr-Cyrl" in warnings[0]


def test_export_layout_uses_standard_xlsform_where_it_exists():
    book = openpyxl.load_workbook(io.BytesIO(xlsform_from_definition(all_types_definition())), read_only=True)
    survey = [list(row) for row in book["survey"].iter_rows(values_only=True)]
    header = survey[0]
    rows: dict[str, dict[str, Any]] = {}
    for row in survey[1:]:  # the first row of a name: a group's end_group row repeats its name
        rows.setdefault(row[header.index("name")], dict(zip(header, row, strict=True)))
    assert header[:3] == ["type", "name", "label::en (en)"]
    assert rows["consent"]["consent"] == "yes" and rows["consent"]["terminate_if"] == "${consent} = 'no'"
    assert rows["which"]["type"] == "select_multiple which"
    assert rows["which"]["constraint"] == "count-selected(.) >= 1 and count-selected(.) <= 2"
    assert rows["which"]["relevant"] == "${heard} = 'yes'"
    assert rows["story"]["relevant"] == "(${heard} != 'no') and (${support} = 'agree' or ${support} = 'neutral')"
    assert rows["support"]["appearance"] == "likert"
    assert rows["grid"]["type"] == "begin_group" and rows["grid"]["appearance"] == "table-list"
    assert rows["score"]["type"] == "range" and rows["score"]["parameters"] == "start=0 end=10 step=2"
    assert rows["household"]["type"] == "integer" and rows["household"]["constraint"] == ". >= 1 and . <= 30"
    assert rows["priorities"]["type"] == "rank priorities"
    choices = [list(row) for row in book["choices"].iter_rows(values_only=True)]
    none_row = next(row for row in choices if row[1] == "none")
    assert dict(zip(choices[0], none_row, strict=True))["exclusive"] == "yes"
    settings_sheet = [list(row) for row in book["settings"].iter_rows(values_only=True)]
    assert dict(zip(*settings_sheet, strict=True))["form_id"] == "all_types"
    book.close()


def test_export_writes_text_as_text_never_as_formula():
    definition = all_types_definition()
    definition["sections"][0]["questions"][0]["text"]["en"] = '=HYPERLINK("http://example.org","click")'
    definition["sections"][0]["questions"][0]["options"][0]["label"]["en"] = "+1 234"
    data = xlsform_from_definition(definition)
    book = openpyxl.load_workbook(io.BytesIO(data))  # not data_only: a formula would show as one
    cells = [cell for row in book["survey"].iter_rows() for cell in row if cell.value]
    formula = next(cell for cell in cells if str(cell.value).startswith("=HYPERLINK"))
    assert formula.data_type == "s"
    assert all(cell.data_type == "s" for row in book["choices"].iter_rows() for cell in row if cell.value)
    assert validate_definition(definition_from_xlsform(data)) == validate_definition(definition)


def test_condition_structure_survives_the_round_trip_where_an_or_would_merge():
    definition = all_types_definition()
    story = definition["sections"][0]["questions"][-1]
    story["display_if"] = {
        "any": [
            {"question": "heard", "operator": "in", "values": ["yes"]},
            {"question": "heard", "operator": "in", "values": ["no"]},
            {
                "all": [
                    {"question": "which", "operator": "not_in", "values": ["a", "b"]},
                    {"question": "support", "operator": "in", "values": ["agree"]},
                ]
            },
        ]
    }
    back = validate_definition(definition_from_xlsform(xlsform_from_definition(definition)))
    assert questions_of(back)["story"]["display_if"] == story["display_if"]


CONDITION_TARGETS = {
    "heard": ["yes", "no", "not_sure"],
    "which": ["a", "b", "c", "none"],
    "support": ["disagree", "neutral", "agree", "dont_know"],
}


@st.composite
def conditions(draw: st.DrawFn, depth: int = 2) -> dict[str, Any]:
    if depth == 0 or draw(st.booleans()):
        question = draw(st.sampled_from(sorted(CONDITION_TARGETS)))
        values = draw(st.lists(st.sampled_from(CONDITION_TARGETS[question]), min_size=1, max_size=3, unique=True))
        return {"question": question, "operator": draw(st.sampled_from(["in", "not_in"])), "values": values}
    # An all/any of one part reads back as that part (the module docstring says so), hence two or more.
    parts = draw(st.lists(conditions(depth - 1), min_size=2, max_size=3))
    return {draw(st.sampled_from(["all", "any"])): parts}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=conditions())
def test_any_display_if_round_trips_exactly(condition):
    definition = all_types_definition()
    definition["sections"][0]["questions"][-1]["display_if"] = condition
    back = validate_definition(definition_from_xlsform(xlsform_from_definition(definition)))
    assert questions_of(back)["story"]["display_if"] == condition


def test_export_validates_its_input():
    definition = all_types_definition()
    definition["sections"][0]["questions"][0]["type"] = "slider"
    with pytest.raises(DefinitionInvalidError):
        xlsform_from_definition(definition)


# -- broken workbooks --------------------------------------------------------------------------------

SIMPLE_HEAD = ["type", "name", "label::English (en)", "required", "relevant", "constraint"]
SIMPLE_CHOICES = [
    ["list_name", "name", "label::English (en)"],
    ["yn", "yes", "Yes"],
    ["yn", "no", "No"],
    ["one", "only", "The only choice"],
    ["agree_dk", "agree", "Agree"],
    ["agree_dk", "dont_know", "Don't know"],
]
SIMPLE_SETTINGS = [["form_id", "form_title"], ["broken_form", "Broken form"]]


def simple(*rows: list[Any]) -> bytes:
    return workbook([SIMPLE_HEAD, *rows], SIMPLE_CHOICES, SIMPLE_SETTINGS)


def test_every_problem_is_listed_at_once_with_its_row():
    data = simple(
        ["select_one yn", "heard", "Heard of it?"],  # row 2
        ["integer", "age", "Age?", None, None, ". >= 0"],  # row 3
        ["text", "why", "Why?", None, "${age} >= 18"],  # row 4: a numeric comparison
        ["geopoint", "where", "Where are you?"],  # row 5: a type we do not support
        ["select_won yn", "typo", "Typo?"],  # row 6: an unknown type
        ["select_one yn", "Q1 Age", "Bad name"],  # row 7
        ["select_one missing_list", "orphan", "No list"],  # row 8
        ["text", "later", "Later", None, "${not_yet} = 'x'"],  # row 9
        ["select_one yn", "maybe", "Maybe", None, "${heard} = 'maybe'"],  # row 10
    )
    problems = problems_of(data)
    assert problems[:2] == [
        "survey row 4: relevant: cannot translate '${age} >= 18' "
        "(supported: ${q} = 'code', ${q} != 'code', selected(${q}, 'code'), not(...), and, or)",
        "survey row 5: type 'geopoint' is not supported",
    ]
    assert "survey row 6: type 'select_won yn' is not supported" in problems
    assert (
        "survey row 7: name: 'Q1 Age' is not snake_case (a lowercase letter, then lowercase letters, digits or _)"
        in problems
    )
    assert "survey row 8: the choice list 'missing_list' is not in the choices sheet" in problems
    assert "survey row 9: relevant: '${not_yet}' is not an earlier question" in problems
    assert "survey row 10: relevant: 'maybe' is not a choice of 'heard'" in problems
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [["select_one yn or_other", "q", "Q"]],
            "survey row 2: type 'select_one yn or_other': or_other is not supported",
        ),
        ([["deviceid", "device"]], "survey row 2: type 'deviceid': respondent and device metadata is never collected"),
        ([["calculate", "c", None, None, None, None]], "survey row 2: type 'calculate' is not supported"),
        ([["begin_repeat", "r", "R"], ["text", "t", "T"], ["end_repeat"]], "survey row 2: repeats (begin_repeat) are"),
        ([["text", "t", "T", "sometimes"]], "survey row 2: required: cannot translate 'sometimes' (use yes or no)"),
        ([["integer", "n", "N", None, None, "regex(., '^[0-9]+$')"]], "survey row 2: constraint: cannot translate"),
        ([["decimal", "n", "N", None, None, ". > 0.5"]], "survey row 2: constraint: cannot translate '. > 0.5'"),
        ([["text", "t", "T", None, None, "string-length(.) >= 3"]], "survey row 2: constraint: a minimum length"),
        ([["select_one yn", "q", "Q"], ["note", "n", "Thanks"]], "survey row 3: a note is supported only as the first"),
        ([["begin_group", "g", "G"], ["text", "t", "T"]], "survey row 2: group 'g' has no end_group"),
        ([["text", "t", "T"], ["end_group"]], "survey row 3: end_group without a group to end"),
        ([["begin_group", "g", "G"], ["end_group"]], "survey row 2: group 'g' has no questions"),
        (
            [["select_multiple yn", "m", "M"], ["text", "t", "T", None, "${m} = 'yes'"]],
            "survey row 3: relevant: use selected(${m}, '...') for the select_multiple 'm'",
        ),
        (
            [["begin_group", "a", "A"], ["begin_group", "b", "B"], ["text", "t", "T"], ["end_group"], ["end_group"]],
            "survey row 3: a group inside a group is supported only as a matrix",
        ),
        ([["select_one one", "q", "Q"]], "survey row 2: the choice list 'one' needs at least 2 choices"),
        # The control case: a list of one choice and one non-substantive choice is fine for a select_one.
        ([["select_one agree_dk", "q", "Q"]], None),
    ],
)
def test_untranslatable_rows_are_reported_with_their_row(rows, expected):
    if expected is None:
        question = definition_from_xlsform(simple(*rows))["sections"][0]["questions"][0]
        assert [o["code"] for o in question["options"]] == ["agree", "dont_know"]
        return
    problems = problems_of(simple(*rows))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_columns_that_do_not_apply_or_are_unknown_are_reported_not_dropped():
    head = [*SIMPLE_HEAD, "min_ranked", "calculation", "media::image::English (en)", "constraint_message", "$kuid"]
    rows = [
        head,
        ["text", "a", "A", None, None, None, 2, None, None, "ignored on purpose", "x1"],
        ["text", "b", "B", None, None, None, None, "1 + 1", None, None, "x2"],
        ["text", "c", "C", None, None, None, None, "2 + 2", "pic.png"],
    ]
    problems = problems_of(workbook(rows, SIMPLE_CHOICES, SIMPLE_SETTINGS))
    assert problems == [
        "survey row 2: column 'min_ranked' does not apply to a text row",
        "survey row 3: column 'calculation' is not supported",  # reported once, not on every row
        "survey row 4: column 'media::image::English (en)' is not supported",
    ]


def test_choices_and_settings_problems_name_their_sheet_and_row():
    choices = [
        ["list_name", "name", "label::English (en)", "filter"],
        ["yn", "yes", "Yes"],
        ["yn", "no", "No"],
        ["yn", "yes", "Yes again"],  # row 4
        ["yn", "Maybe", "Maybe"],  # row 5
        ["yn", "x", "X", "north"],  # row 6
        [None, "orphan", "No list"],  # row 7
    ]
    settings_rows = [["form_id", "form_title", "default_language"], ["Broken-Form", "Broken", "Deutsch"]]
    data = workbook([SIMPLE_HEAD, ["select_one yn", "q", "Q"]], choices, settings_rows)
    problems = problems_of(data)
    assert "settings row 2: default_language: 'Deutsch' names no language of the columns" in problems
    assert "settings row 2: form_id: 'Broken-Form' is not snake_case" in " ".join(problems)
    assert "choices row 4: name: 'yes' appears twice in the list 'yn'" in problems
    assert any(p.startswith("choices row 5: name: 'Maybe' is not snake_case") for p in problems)
    assert "choices row 6: column 'filter' is not supported" in problems
    assert "choices row 7: list_name: missing" in problems


def test_a_language_column_needs_a_tag():
    data = workbook([["type", "name", "label::Deutsch"], ["text", "t", "Text"]], None, SIMPLE_SETTINGS)
    assert "survey row 1: column 'label::Deutsch': the language needs a BCP 47 tag" in problems_of(data)[0]


def test_long_and_control_character_text_is_shortened_in_messages():
    nasty = "${a} = 'x' or\n" + "\u202e" + "z" * 500 + "\t"
    problems = problems_of(simple(["select_one yn", "a", "A"], ["text", "t", "T", None, nasty]))
    (message,) = problems
    assert len(message) < 250
    assert "\n" not in message and "\u202e" not in message and "\t" not in message
    assert "…" in message


def test_a_formula_is_never_evaluated():
    data = simple(["text", "t", '=CONCATENATE("Wh","y?")'])
    raw = definition_from_xlsform(data)
    # openpyxl saved the formula without a cached value; with data_only the cell is empty, not computed.
    assert raw["sections"][0]["questions"][0]["text"] == {}


# -- files that are not workbooks, or too large ------------------------------------------------------


def zipped(members: dict[str, bytes]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return output.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "workbook: the file is not an .xlsx workbook"),
        (b"\x00\x01 certainly not a spreadsheet" * 10, "workbook: the file is not an .xlsx workbook"),
        (b"type,name,label\ntext,q,Question\n", "workbook: the file is not an .xlsx workbook"),
        (zipped({"word/document.xml": b"<w/>", "[Content_Types].xml": b"<Types/>"}), "workbook: the file is not"),
        (
            zipped({"xl/workbook.xml": b"<broken", "[Content_Types].xml": b"<Types/>"}),
            "workbook: the file could not be read as an .xlsx workbook",
        ),
        (b"PK" + b"\x00" * (MAX_BYTES + 1), "workbook: the file is larger than 2 MB"),
        ("a string, not bytes", "workbook: expected the bytes of an .xlsx file"),
    ],
    ids=["empty", "random", "csv", "docx_like_zip", "broken_workbook_xml", "too_large", "not_bytes"],
)
def test_what_is_not_an_xlsx_is_refused_with_a_clear_problem(data, expected):
    assert problems_of(data)[0].startswith(expected)


def test_a_zip_bomb_is_refused_before_unpacking():
    bomb = zipped(
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>", "xl/big.bin": b"\0" * 45_000_000}
    )
    assert len(bomb) < MAX_BYTES
    assert problems_of(bomb) == ["workbook: the file unpacks to more than 40 MB"]


def test_xml_with_an_entity_declaration_is_refused():
    data = simple(["text", "t", "T"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"]
    members["xl/worksheets/sheet1.xml"] = b'<!DOCTYPE x [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>' + sheet
    assert problems_of(zipped(members)) == ["workbook: the file contains an XML document type declaration"]


def test_a_workbook_with_too_many_rows_is_refused():
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("survey")
    sheet.append(SIMPLE_HEAD)
    for number in range(MAX_ROWS + 1):
        sheet.append(["text", f"q{number}", "Question"])
    output = io.BytesIO()
    book.save(output)
    assert problems_of(output.getvalue()) == [f"survey: more than {MAX_ROWS} rows or 200 columns"]


def test_a_workbook_without_a_survey_sheet_is_refused():
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    output = io.BytesIO()
    book.save(output)
    assert problems_of(output.getvalue()) == ["workbook: there is no survey sheet"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=20_000), noise=st.binary(min_size=1))
def test_damaged_or_random_input_only_ever_raises_definition_invalid(data, cut, noise):
    valid = simple(["select_one yn", "q", "Q"], ["text", "t", "T", None, "${q} = 'yes'"])
    cut %= len(valid)
    for candidate in (data, valid[:cut], valid[:cut] + noise + valid[cut + len(noise) :]):
        try:
            definition_from_xlsform(candidate)
        except DefinitionInvalidError as error:
            assert error.errors["problems"]


def test_export_leaves_its_input_unchanged():
    definition = all_types_definition()
    before = copy.deepcopy(definition)
    xlsform_from_definition(definition)
    assert definition == before


def test_a_likert_scale_needs_two_substantive_points():
    head = [*SIMPLE_HEAD, "appearance"]
    data = workbook(
        [head, ["select_one agree_dk", "q", "Q", None, None, None, "likert"]], SIMPLE_CHOICES, SIMPLE_SETTINGS
    )
    assert problems_of(data) == [
        "survey row 2: the scale 'agree_dk' needs at least 2 choices that are not non-substantive"
    ]


def test_other_sheets_are_not_read_but_unsupported_xlsform_sheets_are_reported():
    book = openpyxl.load_workbook(io.BytesIO(simple(["text", "t", "T"])))
    book.create_sheet("Instructions").append(["Fill in the survey sheet", "=1+1", None, "anything"])
    output = io.BytesIO()
    book.save(output)
    assert definition_from_xlsform(output.getvalue())["sections"][0]["questions"][0]["code"] == "t"
    book.create_sheet("external_choices").append(["list_name", "name"])
    output = io.BytesIO()
    book.save(output)
    assert problems_of(output.getvalue()) == ["workbook: the external_choices sheet is not supported"]


def test_metadata_sheet_problems_are_located():
    book = openpyxl.load_workbook(io.BytesIO(simple(["text", "t", "T"])))
    sheet = book.create_sheet("metadata")
    for row in (
        ["field", "json"],
        ["source_document", '{"title": "An op-ed"}'],
        ["themes", "[{'code': 'single quotes'}]"],
        ["colour", "{}"],
        ["sources", '"a string"'],
        ["estimated_duration_minutes", "[1, 2]"],
        ["themes", "[" * 5000],
    ):
        sheet.append(row)
    output = io.BytesIO()
    book.save(output)
    problems = problems_of(output.getvalue())
    assert problems[0] == "metadata row 3: json: '[{'code': 'single quotes'}]' is not JSON"
    assert problems[1].startswith("metadata row 4: field: 'colour' is not one of estimated_duration_minutes")
    assert problems[2:] == [
        "metadata row 5: json: a sources item must be a JSON object",
        "metadata row 6: json: estimated_duration_minutes takes one JSON object",
        "metadata row 7: json: '" + "[" * 59 + "…' is not JSON",
    ]


def test_a_rating_option_explicitly_not_non_substantive_survives_the_round_trip():
    definition = all_types_definition()
    score = questions_of(definition)["score"]
    score["non_substantive"] = [{"code": "skip", "label": score["non_substantive"][0]["label"]}]
    back = validate_definition(definition_from_xlsform(xlsform_from_definition(definition)))
    assert questions_of(back)["score"]["non_substantive"][0]["non_substantive"] is False
    assert back == validate_definition(definition)
