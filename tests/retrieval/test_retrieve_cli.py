"""End-to-end tests of experiments/retrieve.py (subprocesses, tiny real images)."""

import os
import re

import pytest
from conftest import run_experiment

from jaxstyle import images as images_lib

CLASSES = ("banded", "bubbly", "chequered")


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_data):
  """6 small DTD textures (2 per class) in a folder tree, one unreadable file, labels.csv."""
  root = tmp_path_factory.mktemp("cli") / "lib"
  rows = ["path,label"]
  for cls in CLASSES:
    src = os.path.join(shared_data, "retrieval", "dtd10", cls)
    os.makedirs(root / cls)
    for name in sorted(os.listdir(src))[:2]:
      rel = f"{cls}/{os.path.splitext(name)[0]}.png"
      images_lib.save_image(str(root / rel), images_lib.load_image(os.path.join(src, name), 80))
      rows.append(f"{rel},{cls}")
  (root / "banded" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
  (root.parent / "labels.csv").write_text("\n".join(rows) + "\n")
  return root


def _one_line_error(proc):
  assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
  return errors[0]


def test_index_query_eval(library, vgg_partial_path, tmp_path):
  out = tmp_path / "lib.idx"
  proc = run_experiment("retrieve.py", "index", "--library", library, "--out", out,
                        "--vgg_weights", vgg_partial_path, "--scales", "48")
  assert "skipped unreadable file banded/broken.jpg" in proc.stdout
  assert re.search(r"indexed 6 images .*\(6 embedded", proc.stdout), proc.stdout
  query = library / "bubbly" / sorted(os.listdir(library / "bubbly"))[0]
  sheet, page = tmp_path / "sheet.png", tmp_path / "out" / "q.html"
  proc = run_experiment("retrieve.py", "query", "--index", out, "--image", query, "--k", "3",
                        "--vgg_weights", vgg_partial_path, "--sheet", sheet, "--html", page,
                        "--thumb", "32")
  ranked = re.findall(r"^\s*(\d+)\s+([-0-9.]+)\s+(\S+)$", proc.stdout, re.M)
  assert [r[0] for r in ranked] == ["1", "2", "3"]
  assert ranked[0][2] == f"bubbly/{query.name}" and float(ranked[0][1]) == pytest.approx(1, abs=1e-4)
  scores = [float(r[1]) for r in ranked]
  assert scores == sorted(scores, reverse=True)
  grid = images_lib.load_image(str(sheet))
  assert grid.shape[1] > 4 * 32 and grid.shape[0] >= 32  # query + 3 results in one row
  links = re.findall(r'src="([^"]+)"', page.read_text())
  assert len(links) == 4
  for link in links:  # relative links that resolve from the HTML's folder
    assert not os.path.isabs(link) and os.path.isfile(os.path.join(page.parent, link))

  proc = run_experiment("retrieve.py", "eval", "--library", library, "--labels",
                        library.parent / "labels.csv", "--descriptors", "default,stats",
                        "--vgg_weights", vgg_partial_path, "--scales", "48")
  lines = re.findall(r"^(\w+): P@1=([0-9.]+)  P@5=([0-9.]+)  mAP=([0-9.]+)", proc.stdout, re.M)
  assert [l[0] for l in lines] == ["default", "stats"], proc.stdout
  for _, p1, p5, m in lines:
    assert 0 <= float(p1) <= 1 and 0 <= float(p5) <= 1 and 0 < float(m) <= 1

  # Same --out with another descriptor config: clear error, index untouched.
  before = out.read_bytes()
  err = _one_line_error(run_experiment("retrieve.py", "index", "--library", library, "--out", out,
                                       "--vgg_weights", vgg_partial_path, "--scales", "64",
                                       check=False))
  assert "another descriptor config" in err and "--rebuild" in err
  assert out.read_bytes() == before
  err = _one_line_error(run_experiment("retrieve.py", "query", "--index", out, "--image",
                                       library / "banded" / "broken.jpg", "--vgg_weights",
                                       vgg_partial_path, check=False))
  assert "broken.jpg" in err


def test_cli_bad_input_exits_2(library, vgg_partial_path, tmp_path):
  corrupt = tmp_path / "corrupt.idx"
  corrupt.write_bytes(b"PK\x03\x04 this is not a complete zip file")
  err = _one_line_error(run_experiment("retrieve.py", "query", "--index", corrupt, "--image",
                                       library / "banded" / "broken.jpg", check=False))
  assert "corrupt.idx" in err and "not a readable style index" in err
  empty = tmp_path / "empty"
  empty.mkdir()
  err = _one_line_error(run_experiment("retrieve.py", "index", "--library", empty, "--out",
                                       tmp_path / "e.idx", "--vgg_weights", vgg_partial_path,
                                       check=False))
  assert "no image files" in err and not (tmp_path / "e.idx").exists()
  err = _one_line_error(run_experiment("retrieve.py", "frobnicate", check=False))
  assert "index, query, eval" in err


@pytest.mark.parametrize("args,flag", [
    (("query", "--index", "x.idx", "--image", "q.png", "--rebuild"), "rebuild"),
    (("index", "--library", ".", "--out", "x.idx", "--k", "3"), "k"),
    (("eval", "--library", ".", "--labels", "l.csv", "--out", "x.idx"), "out"),
    (("query", "--index", "x.idx", "--image", "q.png", "--scales", "64"), "scales"),
])
def test_flag_of_another_subcommand_exits_2(args, flag):
  err = _one_line_error(run_experiment("retrieve.py", *args, check=False))
  assert f"'{flag}'" in err, err


def test_each_subcommand_has_its_own_help():
  own = {"index": ("out", "rebuild", "descriptor", "scales", "whiten_dim", "center"),
         "query": ("index", "image", "k", "sheet", "html"),
         "eval": ("labels", "descriptors", "scales", "center", "whiten_dim")}
  for name, flags in own.items():
    text = run_experiment("retrieve.py", name, "--help").stdout
    assert f"retrieve.py {name}" in text
    shown = set(re.findall(r"^  --(?:\[no\])?(\w+):", text, re.M))
    for flag in flags:
      assert flag in shown, (name, flag)
    others = {f for other, fs in own.items() if other != name for f in fs} - set(flags)
    assert not others & shown, (name, others & shown)
  listing = run_experiment("retrieve.py", "--help").stdout
  assert all(name in listing for name in own)


def test_descriptor_setting_flags_are_checked(tmp_path):
  err = _one_line_error(run_experiment("retrieve.py", "index", "--library", tmp_path, "--out",
                                       tmp_path / "x.idx", "--scales", "8", check=False))
  assert err == "error: --scales=8: must be >= 16"
  err = _one_line_error(run_experiment("retrieve.py", "eval", "--library", tmp_path, "--labels",
                                       tmp_path / "l.csv", "--layers", "relu9_1", check=False))
  assert err.startswith("error: --layers=relu9_1: unknown VGG-19 layer")
  err = _one_line_error(run_experiment("retrieve.py", "index", "--library", tmp_path, "--out",
                                       tmp_path / "x.idx", "--descriptor", "encoder", check=False))
  assert err.startswith("error: --descriptor encoder needs --checkpoint RUN")
  assert not (tmp_path / "x.idx").exists()
