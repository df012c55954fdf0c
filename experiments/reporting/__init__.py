"""Building blocks of ``experiments/report.py``: benchmark records to a Markdown report.

* ``load``: result files (one record, a suite, a list of records; other JSON
  objects as free-form results) and training run directories, with a
  ``ReportInputError`` naming the file for anything unreadable or malformed.
* ``markdown``: number formatting, Markdown tables and the generic flattener.
* ``tables``: one renderer per benchmark name (headline numbers as labelled
  rows); unknown benchmarks fall back to the generic flattener.
* ``plots``: the PNG figures (matplotlib, Agg, no timestamps in the files).
* ``document``: puts it together into ``report.md`` and ``plots/``.
"""
