"""The public results page: charts with text alternatives, data tables, languages, comparison."""

from __future__ import annotations

import re

from survey.db import unit_of_work
from survey.questionnaires.services import get_questionnaire
from tests.results.test_results_api import fill

PAGE = "/results/dialogue_2022"


def test_below_the_threshold_the_page_says_why(client):
    fill(10)
    page = client.get(PAGE + "?lang=en").get_data(as_text=True)
    assert "<svg" not in page and 'class="notice"' in page


def test_every_question_has_a_chart_and_a_table_in_each_language(client):
    given = fill(60)
    for lang, title in [("sq", "Zëri juaj"), ("sr-Cyrl", "Ваш глас"), ("sr-Latn", "Vaš glas"), ("en", "Your Voice")]:
        response = client.get(f"{PAGE}?lang={lang}")
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and title in page and f'<html lang="{lang}">' in page
        assert page.count('role="img"') >= 8
        assert len(re.findall(r"<title id=\"c-[^\"]+\">", page)) == page.count("<svg")
        assert page.count('<table class="data">') >= 8
        assert "<script" not in page
        assert not any(a["message_to_leaders"] in page for a in given)
    assert "Bashkëpunimi ekonomik dhe vendet e punës" in client.get(PAGE + "?lang=sq").get_data(as_text=True)


def test_the_community_comparison_lists_gaps_and_common_ground(client):
    fill(120)
    page = client.get(PAGE + "?lang=en&breakdown=community").get_data(as_text=True)
    assert 'class="comparison"' in page
    assert "Serb" in page and "Albanian" in page
    # every community in the data is big enough here to be shown
    assert page.count("<figcaption>") >= 3


def test_private_results_and_unknown_breakdowns(client):
    assert client.get(PAGE + "?breakdown=dialogue_support", headers={"Accept": "text/html"}).status_code == 422
    with unit_of_work():
        get_questionnaire("dialogue_2022").results_public = False
    assert client.get(PAGE, headers={"Accept": "text/html"}).status_code == 404
