"""Pure functions of experiments/human_eval.py: pairing, seeded layout, key, scoring, intervals.

Making a page (``build``):

* ``image_folder(path)``: the images of a folder, or (when it has none) of its
  ``samples/`` or else ``outputs/`` subfolder (a run directory); not
  recursive. Images are keyed by file stem; two files with one stem in a
  folder are an error.
* ``layout(stems, seed, n)``: the matched stems (sorted, then shuffled with
  ``numpy.random.default_rng(seed)``) and, per stem, the side A is shown on
  (one seeded draw per stem, from the same generator after the shuffle). The
  page takes the first ``n`` of that order whose two images load; a pair with
  an unreadable image is skipped (``warn`` is told) and the next stem is
  taken instead.
* Pair ids are ``p1``, ``p2``, ... in showing order; the page id is the first
  16 hex digits of the SHA-256 of the title, seed and pairs (ids, sides,
  image hashes). Nothing is time-dependent: the same inputs and seed give the
  same page and key bytes.
* The key (``key.json``): ``{"format": KEY_FORMAT, "version": 1, "page_id",
  "title", "seed", "a": folder, "b": folder, "pairs": [{"id", "stem",
  "a_side": "left"|"right", "a": {"path", "sha256"}, "b": {...}}]}``.

Scoring (``score``): each results file (see human_eval_page) is validated
against the key (``HumanEvalError`` naming the file otherwise), choices are
mapped back to A/B, grouped per rater (the ``rater`` name; files without one
count as their own rater, named after the file; when one rater rated a pair
in several files the latest choice counts). The A-preference rate is
A / (A + B), ties excluded and counted apart, with a Wilson score or exact
Clopper-Pearson interval (``wilson``, ``clopper_pearson``: pure Python). The
pooled row treats every choice as independent (it ignores that raters share
pairs).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import statistics
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from jaxstyle import fileio
from jaxstyle import images as images_lib
from jaxstyle.errors import JaxstyleError

import human_eval_page as page_lib

KEY_FORMAT = "jaxstyle-human-eval-key"
SCORE_FORMAT = "jaxstyle-human-eval-score"
VERSION = 1
RUN_SUBFOLDERS = ("samples", "outputs")
INTERVALS = ("wilson", "clopper-pearson")
CHOICES = ("left", "right", "tie")


class HumanEvalError(JaxstyleError):
  """Bad inputs of human_eval.py: folders without matching images, bad results or key files."""


# ----------------------------------------------------------------------------- pairing


def _images_by_stem(folder: str) -> dict[str, str]:
  by_stem: dict[str, str] = {}
  for path in images_lib.iter_image_files(folder, recursive=False):
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in by_stem:
      raise HumanEvalError(f"{folder}: two images named {stem!r} ({os.path.basename(by_stem[stem])}"
                           f", {os.path.basename(path)}); pairs are matched by name without "
                           "extension, so keep one")
    by_stem[stem] = path
  return by_stem


def image_folder(path: str) -> tuple[str, dict[str, str]]:
  """(folder used, {stem: image path}) for a folder of images or a run directory."""
  if not os.path.isdir(path):
    raise HumanEvalError(f"{path}: no such folder" if not os.path.exists(path) else
                         f"{path}: not a folder (pass a folder of images or a run directory)")
  path = os.path.abspath(path)
  for folder in (path,) + tuple(os.path.join(path, s) for s in RUN_SUBFOLDERS):
    if os.path.isdir(folder):
      found = _images_by_stem(folder)
      if found:
        return folder, found
  raise HumanEvalError(f"{path}: no images in it (nor in its {' or '.join(RUN_SUBFOLDERS)} "
                       "subfolder)")


def layout(stems: Iterable[str], seed: int) -> list[tuple[str, str]]:
  """[(stem, side of A)] for every stem, in the seeded showing order (see module docstring)."""
  stems = sorted(stems)
  rng = np.random.default_rng(seed)
  order = [stems[i] for i in rng.permutation(len(stems))]
  sides = rng.integers(0, 2, size=len(order))
  return [(stem, "left" if side == 0 else "right") for stem, side in zip(order, sides)]


def data_uri(path: str, max_side: int = 0) -> str:
  """The image at ``path`` as a PNG data URI (longer side at most ``max_side``; 0 = as is).

  Raises ImageError (from jaxstyle.images) for an unreadable file.
  """
  image = images_lib.load_image(path)
  if max_side and max(image.shape[:2]) > max_side:
    image = images_lib.resize(image, max_side)
  buf = io.BytesIO()
  Image.fromarray(images_lib.to_uint8(image), mode="RGB").save(buf, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build(a: str, b: str, *, seed: int, n: int | None = None, title: str, max_side: int = 0,
          warn: Callable[[str], None] = lambda message: None) -> tuple[str, dict]:
  """(page HTML, key) for a blind A/B page of folders ``a`` and ``b`` (see module docstring)."""
  a_dir, a_files = image_folder(a)
  b_dir, b_files = image_folder(b)
  common = set(a_files) & set(b_files)
  if not common:
    raise HumanEvalError(f"no image names in common between {a_dir} and {b_dir}; pairs are "
                         "matched by file name without extension")
  if n is not None and n > len(common):
    raise HumanEvalError(f"--pairs {n}: only {len(common)} image names are in both folders")
  want = len(common) if n is None else n
  pairs, key_pairs = [], []
  for stem, a_side in layout(common, seed):
    if len(pairs) == want:
      break
    try:
      uris = {"a": data_uri(a_files[stem], max_side), "b": data_uri(b_files[stem], max_side)}
    except images_lib.ImageError as e:
      warn(f"skipped pair {stem!r}: {e}")
      continue
    pair_id = f"p{len(pairs) + 1}"
    b_side = "right" if a_side == "left" else "left"
    pairs.append({"id": pair_id, a_side: uris["a"], b_side: uris["b"]})
    key_pairs.append({"id": pair_id, "stem": stem, "a_side": a_side,
                      "a": {"path": a_files[stem], "sha256": fileio.file_sha256(a_files[stem])},
                      "b": {"path": b_files[stem], "sha256": fileio.file_sha256(b_files[stem])}})
  if not pairs:
    raise HumanEvalError("no pair has two readable images (see the warnings above)")
  if len(pairs) < want:
    warn(f"only {len(pairs)} of the {want} pairs asked for have two readable images")
  ident = json.dumps([title, seed, [(p["id"], p["a_side"], p["a"]["sha256"], p["b"]["sha256"])
                                    for p in key_pairs]])
  page_id = hashlib.sha256(ident.encode()).hexdigest()[:16]
  key = {"format": KEY_FORMAT, "version": VERSION, "page_id": page_id, "title": title,
         "seed": seed, "a": a_dir, "b": b_dir, "pairs": key_pairs}
  return page_lib.render_page(title, page_id, pairs), key


def dumps(obj) -> str:
  """The JSON text of a key or score file (stable, readable)."""
  return json.dumps(obj, indent=2) + "\n"


# ----------------------------------------------------------------------------- intervals


def _z(level: float) -> float:
  return statistics.NormalDist().inv_cdf(0.5 + level / 2)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
  """Wilson score interval of a binomial proportion k/n (None when n == 0)."""
  if n == 0:
    return None
  z = _z(level)
  p = k / n
  denom = 1 + z * z / n
  centre = (p + z * z / (2 * n)) / denom
  half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
  return max(0.0, centre - half), min(1.0, centre + half)


def _binom_tail(k: int, n: int, p: float, upper: bool) -> float:
  """P(X >= k) (``upper``) or P(X <= k) for X ~ Binomial(n, p), 0 < p < 1, summed in log space."""
  lp, lq = math.log(p), math.log1p(-p)
  terms = range(k, n + 1) if upper else range(0, k + 1)
  return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                      + i * lp + (n - i) * lq) for i in terms)


def _bisect(f: Callable[[float], float], target: float, increasing: bool) -> float:
  lo, hi = 0.0, 1.0
  for _ in range(200):
    mid = (lo + hi) / 2
    if mid in (lo, hi):
      break
    if (f(mid) < target) == increasing:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
  """Exact (Clopper-Pearson) interval of k/n by bisection on binomial tails (None when n == 0)."""
  if n == 0:
    return None
  alpha = 1 - level
  low = 0.0 if k == 0 else _bisect(lambda p: _binom_tail(k, n, p, True), alpha / 2, True)
  high = 1.0 if k == n else _bisect(lambda p: _binom_tail(k, n, p, False), alpha / 2, False)
  return low, high


def interval(kind: str, k: int, n: int, level: float) -> tuple[float, float] | None:
  if kind == "wilson":
    return wilson(k, n, level)
  if kind == "clopper-pearson":
    return clopper_pearson(k, n, level)
  raise HumanEvalError(f"unknown interval {kind!r}; choose one of {', '.join(INTERVALS)}")


# ----------------------------------------------------------------------------- scoring


def _read_json(path: str, what: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise HumanEvalError(f"{path}: no such {what} file") from None
  except (OSError, UnicodeDecodeError) as e:
    raise HumanEvalError(f"{path}: cannot read this {what} file ({e})") from None
  except json.JSONDecodeError as e:
    raise HumanEvalError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); "
                         f"not a {what} file of human_eval.py") from None
  except (ValueError, RecursionError) as e:  # a number of 100000 digits, nesting too deep
    raise HumanEvalError(f"{path}: not a {what} file of human_eval.py ({e})") from None


def load_key(path: str) -> dict:
  key = _read_json(path, "key")
  if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
    raise HumanEvalError(f"{path}: not a key.json of human_eval.py make")
  if key.get("version") != VERSION:
    raise HumanEvalError(f"{path}: key version {key.get('version')!r}; this tool reads {VERSION}")
  if not all(isinstance(key.get(k), str) for k in ("page_id", "a", "b")):
    raise HumanEvalError(f"{path}: malformed key (page_id, a and b must be strings)")
  pairs = key.get("pairs")
  if not isinstance(pairs, list) or not all(
      isinstance(p, dict) and isinstance(p.get("id"), str) and p.get("a_side") in ("left", "right")
      for p in pairs):
    raise HumanEvalError(f"{path}: malformed key (its pairs list is damaged)")
  return key


def load_results(path: str, key: dict, key_path: str) -> dict:
  """A results file, checked against ``key``: {"rater": str, "choices": [(pair, choice, time)]}."""
  res = _read_json(path, "results")
  if not isinstance(res, dict) or res.get("format") != page_lib.RESULTS_FORMAT:
    raise HumanEvalError(f"{path}: not a results file of a human_eval.py page")
  if res.get("version") != page_lib.RESULTS_VERSION:
    raise HumanEvalError(f"{path}: results version {res.get('version')!r}; this tool reads "
                         f"{page_lib.RESULTS_VERSION}")
  if res.get("page_id") != key["page_id"]:
    raise HumanEvalError(f"{path}: results of page {res.get('page_id')!r}, but {key_path} is the "
                         f"key of page {key['page_id']!r}; score them with their own page's "
                         "key.json")
  rater, choices = res.get("rater", ""), res.get("choices")
  if not isinstance(rater, str) or not isinstance(choices, list):
    raise HumanEvalError(f"{path}: malformed results (rater or choices)")
  ids = {p["id"] for p in key["pairs"]}
  out = []
  for i, c in enumerate(choices):
    if not isinstance(c, dict) or not isinstance(c.get("pair"), str) or c["pair"] not in ids \
        or c.get("choice") not in CHOICES:
      raise HumanEvalError(f"{path}: choice {i + 1} is malformed or names a pair that {key_path} "
                           f"does not have: {json.dumps(c)[:80]}")
    out.append((c["pair"], c["choice"], str(c.get("time", ""))))
  return {"rater": rater.strip(), "choices": out}


def _row(name: str, files: Sequence[str], outcomes: Sequence[str], kind: str,
         level: float) -> dict:
  a, b, ties = outcomes.count("a"), outcomes.count("b"), outcomes.count("tie")
  ci = interval(kind, a, a + b, level)
  return {"rater": name, "files": list(files), "rated": len(outcomes), "a": a, "b": b,
          "ties": ties, "a_rate": a / (a + b) if a + b else None,
          "low": ci[0] if ci else None, "high": ci[1] if ci else None}


def score(key: dict, results: Sequence[tuple[str, dict]], *, kind: str = "wilson",
          level: float = 0.95, warn: Callable[[str], None] = lambda message: None) -> dict:
  """Per-rater and pooled A-preference of ``results`` ([(file, load_results(...))])."""
  a_side = {p["id"]: p["a_side"] for p in key["pairs"]}
  raters: dict[str, dict] = {}
  for path, res in results:
    name = res["rater"] or f"(unnamed: {os.path.basename(path)})"
    entry = raters.setdefault(name, {"files": [], "latest": {}})
    entry["files"].append(path)
    for pair, choice, time in res["choices"]:
      old = entry["latest"].get(pair)
      if old is not None and old[1] != choice:
        warn(f"rater {name}: pair {pair} rated more than once; the latest choice counts")
      if old is None or time >= old[0]:
        entry["latest"][pair] = (time, choice)
  rows, pooled = [], []
  for name, entry in raters.items():
    outcomes = ["tie" if c == "tie" else ("a" if c == a_side[pair] else "b")
                for pair, (_, c) in entry["latest"].items()]
    rows.append(_row(name, entry["files"], outcomes, kind, level))
    pooled += outcomes
  return {"format": SCORE_FORMAT, "version": VERSION, "page_id": key["page_id"], "a": key["a"],
          "b": key["b"], "pairs": len(key["pairs"]), "interval": kind, "level": level,
          "raters": rows,
          "pooled": _row("pooled", [f for _, e in raters.items() for f in e["files"]], pooled,
                         kind, level)}


def table(report: dict) -> str:
  """The score report as a readable text table."""
  pct = f"{100 * report['level']:g}%"
  lines = [f"A: {report['a']}", f"B: {report['b']}",
           f"page {report['page_id']}: {report['pairs']} pairs; P(A) = A / (A + B), ties "
           f"excluded; {pct} {report['interval']} interval", ""]
  width = max([len(r["rater"]) for r in report["raters"]] + [6])
  lines.append(f"{'rater':<{width}}  files  rated     A     B  ties   P(A)  {pct} interval")
  for r in report["raters"] + [report["pooled"]]:
    rate = "     -" if r["a_rate"] is None else f"{r['a_rate']:6.3f}"
    ci = "-" if r["low"] is None else f"[{r['low']:.3f}, {r['high']:.3f}]"
    lines.append(f"{r['rater']:<{width}}  {len(r['files']):5d}  {r['rated']:5d}  {r['a']:4d}  "
                 f"{r['b']:4d}  {r['ties']:4d}  {rate}  {ci}")
  return "\n".join(lines) + "\n"
