"""Fuzz: human-eval key and results files, and flagfiles through a real command.

* ``load_key`` -> ``load_results`` -> ``score`` -> ``table`` on a key written
  by ``human_eval_lib.build`` and results as the page exports them, one of the
  two mutated (JSON-, line- and byte-level): each case scores or raises
  ``HumanEvalError`` naming the file.
* Flagfiles: ``experiments/human_eval.py score --flagfile=F`` in subprocesses
  with F mutated (invalid UTF-8, NUL bytes, junk and dropped lines, itself or
  a missing file nested, a directory): each exits 0 (scored) or 2 with one
  ``error:`` line, never a traceback.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fuzz_testlib as fz
from conftest import EXPERIMENTS, ROOT
from jaxstyle import images

import human_eval_lib as lib

SEED = 13
ALLOWED = (lib.HumanEvalError,)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  """(key path, results path, key text, results text) of a valid 4-pair page and one rater."""
  d = tmp_path_factory.mktemp("human_eval")
  for i in range(4):
    for m, colour in (("a", 0.2), ("b", 0.8)):
      images.save_image(str(d / m / f"s{i}.png"), np.full((8, 8, 3), colour, np.float32))
  _, key = lib.build(str(d / "a"), str(d / "b"), seed=0, title="which?")
  key_text = lib.dumps(key)
  sides = ["left", "right", "tie", "left"]
  results = {"format": "jaxstyle-human-eval", "version": 1, "page_id": key["page_id"],
             "rater": "ann", "choices": [{"pair": p["id"], "choice": c, "time": f"t{i}"}
                                         for i, (p, c) in enumerate(zip(key["pairs"], sides))]}
  results_text = json.dumps(results, indent=1) + "\n"
  key_path, results_path = fz.write(str(d / "key.json"), key_text.encode()), \
      fz.write(str(d / "results.json"), results_text.encode())
  _score(key_path, results_path)  # the seeds themselves are valid
  return key_path, results_path, key_text, results_text


def _score(key_path, results_path):
  key = lib.load_key(key_path)
  report = lib.score(key, [(results_path, lib.load_results(results_path, key, key_path))])
  return lib.table(report)


def test_fuzz_key(tmp_path, page):
  _, results_path, key_text, _ = page
  fz.fuzz("human_eval.load_key+score", 300, SEED, str(tmp_path), ".json",
          fz.json_text_mutators(key_text), lambda p: _score(p, results_path), ALLOWED)


def test_fuzz_results(tmp_path, page):
  key_path, _, _, results_text = page
  fz.fuzz("human_eval.load_results+score", 300, SEED, str(tmp_path), ".json",
          fz.json_text_mutators(results_text), lambda p: _score(key_path, p), ALLOWED)


# ----------------------------------------------------------------------------- flagfiles


def _flagfile_cases(tmp_path, key_path, results_path):
  """(mutation, flagfile path) of the flagfile cases: crafted ones and seeded line mutations."""
  text = f"# scoring\n--key={key_path}\n--results={results_path}\n--interval=wilson\n--level=0.9\n"
  cases = [("the valid flagfile", text.encode())]
  cases += [("invalid UTF-8", b"\xff\xfe" + text.encode()),
            ("a NUL byte", text.encode()[:30] + b"\0"),
            ("binary junk", bytes(range(256))),
            ("itself nested", text.encode() + b"--flagfile=SELF\n"),
            ("a missing nested flagfile", text.encode() + b"--flagfile=/nonexistent/x.flags\n"),
            ("a nested directory", f"{text}--flagfile={tmp_path}\n".encode()),
            ("an unknown flag", text.encode() + b"--no_such_flag=3\n"),
            ("a bad --level", text.replace("0.9", "1e999").encode())]
  for i in range(3):
    seed, rng = fz.rng_for("flagfile", i, SEED)
    data, desc = fz.mutate_lines(text, rng)
    cases.append((f"seed={seed} {desc}", data))
  out = []
  for i, (desc, data) in enumerate(cases):
    path = str(tmp_path / f"case{i}.flags")
    fz.write(path, data.replace(b"SELF", path.encode()))
    out.append((desc, path))
  return out + [("the flagfile is a directory", str(tmp_path)),
                ("no such flagfile", str(tmp_path / "missing.flags"))]


def test_fuzz_flagfiles_through_the_command(tmp_path, page):
  key_path, results_path, _, _ = page
  cases = _flagfile_cases(tmp_path, key_path, results_path)
  env = dict(os.environ, PYTHONPATH=ROOT)
  procs = []
  for desc, path in cases:  # all at once: each is a short-lived process
    procs.append((desc, subprocess.Popen(
        [sys.executable, os.path.join(EXPERIMENTS, "human_eval.py"), "score", f"--flagfile={path}"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        errors="replace")))
  failures = []
  for desc, proc in procs:
    out, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    ok = (proc.returncode == 0 and "pooled" in out) or (
        proc.returncode == 2 and lines and lines[-1].startswith("error:"))
    if not ok or "Traceback" in err:
      failures.append(f"flagfile case {desc!r}: exit {proc.returncode}, stderr: {err[-600:]}")
  assert not failures, "\n".join(failures)
  assert procs[0][1].returncode == 0  # the valid flagfile scores
