"""Markdown pieces of the report: cell formatting, tables, and the generic flattener.

Numbers are written with 4 significant digits (``f"{v:.4g}"``: ``float()``
reads every cell back), booleans as yes/no, missing values as ``–``. A
``Timing`` cell is a median with its spread: ``median (min–max)`` where the
record has both ends, else ``median (IQR x)``, else the median alone.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Sequence

MISSING = "–"
MAX_TEXT = 80
MAX_LIST = 16
MAX_GENERIC_ROWS = 150

Rows = list[tuple[str, Any]]
# A renderer's output: (sub-table title, or "" for none; labelled rows).
Section = tuple[str, Rows]


@dataclasses.dataclass(frozen=True)
class Timing:
  """A timing cell: ``median`` and, where measured, its spread."""
  median: float | None
  low: float | None = None
  high: float | None = None
  iqr: float | None = None

  def __str__(self) -> str:
    if not _is_number(self.median):
      return MISSING
    text = number(self.median)
    if _is_number(self.low) and _is_number(self.high):
      return f"{text} ({number(self.low)}–{number(self.high)})"
    if _is_number(self.iqr):
      return f"{text} (IQR {number(self.iqr)})"
    return text


def timing(d: dict[str, Any], prefix: str = "", unit: str = "ms") -> Timing:
  """The ``Timing`` of ``d[prefix + "median_" + unit]`` (or ``prefix + unit``) and its spread keys."""
  median = d.get(f"{prefix}median_{unit}", d.get(f"{prefix}{unit}"))
  return Timing(median, d.get(f"{prefix}min_{unit}"), d.get(f"{prefix}max_{unit}"),
                d.get(f"{prefix}iqr_{unit}"))


def _is_number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(v: float | int) -> str:
  if isinstance(v, int):
    return str(v)
  if not math.isfinite(v):
    return repr(v)
  return f"{v:.4g}"


def _escape(text: str) -> str:
  text = " ".join(text.split()).replace("|", "\\|")
  return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def cell(v: Any) -> str:
  """One table cell (see the module docstring)."""
  if v is None:
    return MISSING
  if isinstance(v, bool):
    return "yes" if v else "no"
  if _is_number(v):
    return number(v)
  if isinstance(v, (list, tuple)):
    if not v:
      return "(none)"
    if len(v) <= MAX_LIST and all(not isinstance(x, (dict, list, tuple)) for x in v):
      return ", ".join(cell(x) for x in v)
    return f"({len(v)} values)"
  if isinstance(v, dict):
    return f"({len(v)} entries)"
  return _escape(str(v))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: bool = True) -> str:
  """A Markdown table; the first column left-aligned, the others right-aligned if ``numeric``."""
  head = [_escape(str(h)) for h in header]
  lines = ["| " + " | ".join(head) + " |",
           "|" + "|".join([":---"] + ["---:" if numeric else ":---"] * (len(head) - 1)) + "|"]
  for row in rows:
    lines.append("| " + " | ".join(cell(v) for v in row) + " |")
  return "\n".join(lines) + "\n"


def side_by_side(columns: Sequence[str], per_column: Sequence[Rows], first: str = "") -> str:
  """One table: a row per label (first-seen order), one column per entry of ``per_column``."""
  order: dict[str, None] = {}
  values: list[dict[str, Any]] = []
  for rows in per_column:
    d: dict[str, Any] = {}
    for label, value in rows:
      order.setdefault(label, None)
      d.setdefault(label, value)
    values.append(d)
  rows = [[label] + [v.get(label, None) for v in values] for label in order]
  return table([first] + list(columns), rows)


def flatten(value: Any, prefix: str = "") -> Rows:
  """Scalar leaves of nested JSON as ``(dotted.key, value)`` rows (short scalar lists kept whole)."""
  if isinstance(value, dict):
    rows: Rows = []
    for k, v in value.items():
      rows.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return rows
  if isinstance(value, list):
    if len(value) <= MAX_LIST and all(not isinstance(x, (dict, list)) for x in value):
      return [(prefix, value)]
    if all(isinstance(x, dict) for x in value) and len(value) <= 50:
      rows = []
      for i, v in enumerate(value):
        rows.extend(flatten(v, f"{prefix}[{i}]"))
      return rows
    return [(prefix, f"({len(value)} values)")]
  return [(prefix, value)]


def generic(results: dict[str, Any]) -> list[Section]:
  """The fallback renderer: every scalar of ``results``, flattened (capped)."""
  rows = flatten(results)
  if len(rows) > MAX_GENERIC_ROWS:
    rows = rows[:MAX_GENERIC_ROWS] + [(f"(… {len(rows) - MAX_GENERIC_ROWS} more values)", None)]
  return [("", rows)]
