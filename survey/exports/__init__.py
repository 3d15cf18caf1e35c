"""Exports of responses: a streamed dataset and writers for CSV, XLSX, JSON lines, SPSS, Stata and a
Frictionless Data Package, with the privacy rules of DESIGN §6 applied on the way.

- :mod:`.dataset` — the columns of a questionnaire's versions and one row per response, pivoted by
  the database and streamed (``build_dataset``);
- :mod:`.columns` — the per-type column layout (to be moved into the question-type registry);
- :mod:`.scrub` — the free-text PII scrubber; :mod:`.cells` — formula neutralising;
- :mod:`.privacy` — partner microdata with k-anonymity (``partner_dataset``);
- :mod:`.writers` — one module per format; :mod:`.services` — ``export_responses``, the one call;
- :mod:`.cli` — ``flask survey export``.
"""
