"""The fuzz property check shared by the ``test_fuzz_*`` files (mutators: ``fuzz_mutations``).

Contract:

* The mutators of ``fuzz_mutations`` (re-exported here) each take the valid
  seed content and a ``numpy.random.Generator`` and return ``(new content,
  description)``; see that module.
* ``run_case`` / ``run_cases(parser, cases, load, allowed)``: each case is
  ``(seed, mutation, path)``; ``load(path)`` must return or raise one of
  ``allowed`` within ``CASE_TIMEOUT_S`` seconds (SIGALRM; a ``BaseException``
  so no ``except Exception`` in a parser swallows it). With ``names_file`` the
  error message must also name the file. Returns the escapes as lines that
  print the parser, the seed, the mutation and the exception (with its
  innermost frame); ``assert_no_escapes`` fails with all of them.
  ``fuzz(...)`` = ``generate`` (seeded cases written to files) + the
  ``special_paths`` (a directory, a missing and an empty file) + the check;
  ``in_folder`` loads a case file placed in a fresh folder (a run directory).
  Case i of a parser uses ``rng_for(parser, i, base_seed)``: the printed seed
  and mutation reproduce it. ``$JAXSTYLE_FUZZ_SCALE`` (default 1) multiplies
  the number of cases of every ``fuzz`` call: a larger pass, off the default run.
* No pickle runs: ``evil_pickle(marker)`` (pickle bytes whose ``__reduce__``
  would create ``marker``), ``evil_npy_bytes(marker)`` (an object-array
  ``.npy`` holding it), ``evil_npz_files`` (npz-like files carrying them) and
  ``refusals(files, loaders, allowed, marker)`` (each must be refused with a
  documented error naming the file, and ``marker`` must never appear).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import traceback
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from fuzz_mutations import (  # noqa: F401 - re-exported: tests use fz.mutate_bytes etc.
    DEEP, dumps_json, json_text_mutators, mutate_arrays, mutate_bytes, mutate_json, mutate_lines,
    mutate_zip, npy_bytes, npz_arrays, npz_bytes, npz_mutators, zip_bytes, zip_members)

CASE_TIMEOUT_S = 20.0  # a case that takes this long is a hang (normal cases take milliseconds)
# A larger pass: JAXSTYLE_FUZZ_SCALE=20 python -m pytest -k fuzz (20x the cases, same seeds first).
SCALE = max(1, int(os.environ.get("JAXSTYLE_FUZZ_SCALE", "1")))


class FuzzTimeout(BaseException):
  """Raised by SIGALRM in a case that runs too long (BaseException: parsers cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float):
  def on_alarm(signum, frame):
    raise FuzzTimeout(f"no answer after {seconds:g} s")

  old = signal.signal(signal.SIGALRM, on_alarm)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def rng_for(parser: str, index: int, base_seed: int) -> tuple[int, np.random.Generator]:
  """(seed, generator) of case ``index`` of ``parser``: the seed printed on failure."""
  seed = base_seed * 100003 + index
  return seed, np.random.default_rng([seed, sum(map(ord, parser))])


# ----------------------------------------------------------------------------- the property


def evil_pickle(marker: str, nest: bool = False) -> bytes:
  """Pickle bytes that would create ``marker`` when unpickled (``nest``: inside a state dict)."""

  class Evil:

    def __reduce__(self):
      return (os.system, (f"touch {marker}",))

  obj = Evil()
  if nest:
    obj = {"features.0.weight": [1, {"x": obj}], "features.0.bias": None}
  return pickle.dumps(obj, protocol=2)


def evil_npy_bytes(marker: str) -> bytes:
  """A ``.npy`` object array whose element pickles to a marker-creating ``__reduce__``."""

  class Evil:

    def __reduce__(self):
      return (os.system, (f"touch {marker}",))

  return npy_bytes(np.array([Evil(), 1.0], dtype=object), allow_pickle=True)


def evil_npz_files(tmp_dir: str, valid: bytes, marker: str) -> list[tuple[str, str]]:
  """(description, path) of npz-like files whose pickles would create ``marker``: an extra
  object-array member, each member in turn replaced by one, a bare ``.npy`` and a raw pickle."""
  evil = evil_npy_bytes(marker)
  good = zip_members(valid)
  variants = [("an extra object-array member", zip_bytes(good + [("evil.npy", evil)]))]
  variants += [(f"member {name!r} replaced by an object array",
                zip_bytes([(n, evil if n == name else p) for n, p in good])) for name, _ in good]
  variants += [("a bare .npy object array", evil), ("a raw pickle", evil_pickle(marker))]
  return [(desc, write(os.path.join(tmp_dir, f"evil{i}.npz"), data))
          for i, (desc, data) in enumerate(variants)]


def refusals(files: Sequence[tuple[str, str]], loaders: dict[str, Callable[[str], Any]],
             allowed: tuple[type, ...], marker: str) -> list[str]:
  """Loads every hostile file with every loader: each must raise ``allowed`` naming the file,
  and ``marker`` must never appear. Returns the failures."""
  failures = []
  for desc, path in files:
    for name, load in loaders.items():
      escape = run_case(name, 0, desc, lambda: load(path), allowed, os.path.basename(path),
                        must_raise=True)
      if escape:
        failures.append(escape)
      if os.path.exists(marker):
        failures.append(f"{name} {desc}: THE PICKLE RAN (marker created)")
        os.remove(marker)
  return failures


def _frame(e: BaseException) -> str:
  tb = traceback.extract_tb(e.__traceback__)
  if not tb:
    return ""
  f = tb[-1]
  return f" at {os.path.relpath(f.filename)}:{f.lineno} ({f.name})"


def run_case(parser: str, seed: int, mutation: str, load: Callable[[], Any],
             allowed: tuple[type, ...], name: str | None = None,
             must_raise: bool = False) -> str | None:
  """None if ``load()`` returns (unless ``must_raise``) or raises one of ``allowed`` (naming
  ``name``); else the escape."""
  where = f"{parser} seed={seed} mutation: {mutation}"
  try:
    with deadline(CASE_TIMEOUT_S):
      load()
  except FuzzTimeout as e:
    return f"{where}: HANG ({e})"
  except allowed as e:
    if name is not None and name not in str(e):
      return f"{where}: {type(e).__name__} does not name the file {name!r}: {str(e)[:200]}"
    return None
  except Exception as e:  # noqa: BLE001 - what the property forbids
    return f"{where}: ESCAPED {type(e).__name__}: {str(e)[:200]}{_frame(e)}"
  return f"{where}: LOADED a file it must refuse" if must_raise else None


def run_cases(parser: str, cases: Iterable[tuple[int, str, str]], load: Callable[[str], Any],
              allowed: tuple[type, ...], names_file: bool = True) -> tuple[list[str], int]:
  """Runs ``load`` on each ``(seed, mutation, path)``; returns (escapes, number of cases)."""
  escapes, count = [], 0
  for seed, mutation, path in cases:
    count += 1
    name = os.path.basename(path) if names_file else None
    escape = run_case(parser, seed, mutation, lambda: load(path), allowed, name)
    if escape:
      escapes.append(escape)
  return escapes, count


def assert_no_escapes(escapes: Sequence[str], count: int, parser: str) -> None:
  assert count > 0, f"{parser}: no fuzz case ran"
  assert not escapes, (f"{parser}: {len(escapes)} of {count} fuzz cases escaped the documented "
                       "errors:\n" + "\n".join(escapes[:25]))


def write(path: str, data: bytes) -> str:
  with open(path, "wb") as f:
    f.write(data)
  return path


def generate(parser: str, n: int, base_seed: int, tmp_dir: str, suffix: str,
             mutators: Sequence[Callable[[np.random.Generator], tuple[bytes, str]]]
             ) -> Iterator[tuple[int, str, str]]:
  """``n`` cases ``(seed, mutation, path)``; case i writes ``mutators[i % len](rng)`` to a file."""
  for i in range(n):
    seed, rng = rng_for(parser, i, base_seed)
    data, mutation = mutators[i % len(mutators)](rng)
    yield seed, mutation, write(os.path.join(tmp_dir, f"{parser}_{i}{suffix}"), data)


def fuzz(parser: str, n: int, base_seed: int, tmp_dir: str, suffix: str,
         mutators: Sequence[Callable[[np.random.Generator], tuple[bytes, str]]],
         load: Callable[[str], Any], allowed: tuple[type, ...], names_file: bool = True) -> int:
  """``n`` generated cases (times ``$JAXSTYLE_FUZZ_SCALE``) plus ``special_paths``; fails listing
  every escape; returns the count."""
  n *= SCALE
  cases = list(generate(parser, n, base_seed, tmp_dir, suffix, mutators))
  cases += [(0, m, p) for m, p in special_paths(tmp_dir, parser.replace("/", "_") + suffix)]
  escapes, count = run_cases(parser, cases, load, allowed, names_file=names_file)
  assert_no_escapes(escapes, count, parser)
  return count


def in_folder(tmp_dir: str, name: str, load: Callable[[str], Any]) -> Callable[[str], Any]:
  """A case loader that copies the case file (or directory) into a fresh folder as ``name``
  (e.g. a run directory's config.json) and calls ``load(folder)``."""
  def case(path):
    folder = os.path.join(tmp_dir, "in_" + os.path.basename(path))
    os.makedirs(folder)
    if os.path.isdir(path):
      shutil.copytree(path, os.path.join(folder, name))
    elif os.path.exists(path):
      shutil.copy(path, os.path.join(folder, name))
    return load(folder)
  return case


def special_paths(tmp_dir: str, name: str) -> list[tuple[str, str]]:
  """(mutation, path): a directory, a missing file and an empty file in place of ``name``."""
  d = os.path.join(tmp_dir, "dir_" + name)
  os.makedirs(d, exist_ok=True)
  return [("a directory in place of the file", d),
          ("no such file", os.path.join(tmp_dir, "missing_" + name)),
          ("empty file", write(os.path.join(tmp_dir, "empty_" + name), b""))]
