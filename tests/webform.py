"""A small driver for the questionnaire form pages through the Flask test client.

It posts back what a browser would: hidden fields, checked boxes and radios, typed text, selected
options, plus the fields a test sets (which replace the page's values for those names).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse


class _FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: MultiDict[str, str] = MultiDict()
        self.hidden: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") != "submit":
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.fields.add(name, a.get("value", "on"))
            else:
                self.fields.add(name, a.get("value", ""))
                if kind == "hidden":
                    self.hidden[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.add(name, "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.fields.add(self._select, a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields.setlist(self._textarea, [self.fields.get(self._textarea, "") + data])

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


class FormSession:
    """Follows one respondent through the pages like a browser would."""

    def __init__(self, client: Any, code: str, lang: str | None = None) -> None:
        self.client = client
        self.code = code
        query = f"?lang={lang}" if lang else ""
        self.response: TestResponse = client.get(f"/s/{code}{query}")
        assert self.response.status_code == 200, self.response.status_code

    @property
    def page(self) -> str:
        return self.response.get_data(as_text=True)

    def _parsed(self) -> _FormFields:
        parser = _FormFields()
        parser.feed(self.page)
        return parser

    @property
    def hidden(self) -> dict[str, str]:
        return self._parsed().hidden

    def post(self, action: str = "next", **fields: Any) -> TestResponse:
        """Send the page with ``fields`` set (``q__grid__r1`` is the field ``q-grid-r1``)."""
        data = self._parsed().fields
        for name, value in fields.items():
            data.setlist(name.replace("__", "-"), value if isinstance(value, list) else [value])
        data["action"] = action
        self.response = self.client.post(f"/s/{self.code}", data=data)
        return self.response

    def legends(self) -> list[str]:
        found = re.findall(r"<legend>(.*?)</legend>", self.page, re.S)
        return [re.sub(r"<[^>]+>", "", legend).strip() for legend in found]

    def visible_fieldsets(self) -> list[str]:
        return re.findall(r'<fieldset class="question[^"]*" id="q-([a-z0-9_]+)"(?![^>]*hidden)', self.page)
