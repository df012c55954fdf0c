"""Bad input as a new user gives it (issue 13, items 4-9): each case runs the real command.

Every user error must be ONE ``error:`` line on stderr naming the file or flag,
exit status 2 and no traceback; warnings are one ``warning:`` line. The cases
fail early (before any real work), so each subprocess takes seconds (most of
it JAX's import); one case per item runs by default, the others under ``-m slow``.

* Item 4: an output path that is a file where a folder is needed (or a folder
  where a file is), a damaged run directory, a truncated oracle; any OSError
  about a user path that escapes a command (``cli.run``'s safety net).
* Item 5: sizes whose memory estimate exceeds ``--max_memory_gb``; the
  estimate of a Gatys run checked against a measured one.
* Item 6: ``--max_pixels`` on every command that reads images.
* Item 7: flags that do not apply to the chosen mode or subcommand.
* Item 8: ``--help`` (and ``-h``) exits 0 on every command.
* Item 9: an image upscaled more than 4x gives one warning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from conftest import EXPERIMENTS, ROOT, run_experiment


def _one_error(proc, *needles):
  """The one ``error:`` line of a failed command; it must contain every needle."""
  assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, proc.stderr[-3000:]
  for needle in needles:
    assert needle in errors[0], (needle, errors[0])
  return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_data, vgg_partial_path):
  """Small inputs: a photo, a style, a folder of 3 images, a file in the way, a 1x1 image."""
  root = tmp_path_factory.mktemp("bad_input")
  photo = os.path.join(shared_data, "content", "skimage_chelsea.png")
  style = os.path.join(shared_data, "styles", "hokusai_great_wave.jpg")
  lib = root / "lib"
  lib.mkdir()
  for i in range(3):
    Image.fromarray(np.full((48, 64, 3), 60 * i + 20, np.uint8)).save(lib / f"im{i}.png")
  blocker = root / "blocker"  # a FILE where commands want a folder
  blocker.write_text("I am a file\n")
  (root / "folder.png").mkdir()  # a FOLDER where commands want an image file
  tiny = root / "tiny.png"
  Image.new("RGB", (1, 1), (200, 30, 30)).save(tiny)
  return {"root": root, "photo": photo, "style": style, "lib": str(lib), "blocker": str(blocker),
          "tiny": str(tiny), "vgg": vgg_partial_path}


def _run(script, *args, timeout=120):
  return run_experiment(script, *args, check=False, timeout=timeout)


# ----------------------------------------------------------------------------- item 4: output paths


SLOW = pytest.mark.slow


def _fill(line, f):
  """A command line with PHOTO, STYLE, VGG, LIB, BLOCKER, ROOT placeholders -> argument list."""
  keys = {"PHOTO": f["photo"], "STYLE": f["style"], "VGG": f["vgg"], "LIB": f["lib"],
          "BLOCKER": f["blocker"], "ROOT": str(f["root"])}
  words = line.split()
  for key, value in keys.items():
    words = [w.replace(key, value) for w in words]
  return words


def _cases(table, quick):
  """``(name, line, needle)`` rows as parameters; those not in ``quick`` are slow (a JAX start each)."""
  return [pytest.param(line, needle, id=name, marks=() if name in quick else (SLOW,))
          for name, line, needle in table]


OUTPUT_CASES = [  # a file where a folder is wanted, or a folder where a file is
    ("stylize_out_under_file", "stylize.py --content PHOTO --style STYLE --vgg_weights VGG "
     "--out BLOCKER/o.png --size 32 --steps 1", "--out"),
    ("stylize_out_is_folder", "stylize.py --content PHOTO --style STYLE --vgg_weights VGG "
     "--out ROOT/folder.png --size 32 --steps 1", "--out"),
    ("stylize_network_out_under_file", "stylize.py --checkpoint ROOT/no_run --content PHOTO "
     "--style x --out BLOCKER/o.png", "--out"),
    ("stylize_network_folder_out_is_file", "stylize.py --checkpoint ROOT/no_run --content LIB "
     "--style x --out BLOCKER", "--out"),
    ("export_out_under_file", "stylize.py export --checkpoint ROOT/no_run --out BLOCKER/x.jaxexport",
     "--out"),
    ("generate_out_dir_is_file", "generate.py --style STYLE --vgg_weights VGG --out_dir BLOCKER "
     "--size 16 --steps 1 --n 1", "--out_dir"),
    ("personalize_images_out_under_file", "personalize.py from-images --checkpoint ROOT/no_run "
     "--liked LIB --out BLOCKER/me.style", "--out"),
    ("personalize_choices_out_under_file", "personalize.py from-choices --checkpoint ROOT/no_run "
     "--photo PHOTO --out BLOCKER/me.style", "--out"),
    ("human_eval_make_out_is_file", "human_eval.py make --a LIB --b LIB --out BLOCKER", "--out"),
    ("human_eval_score_out_under_file", "human_eval.py score ROOT/r.json --out BLOCKER/s.json",
     "--out"),
    ("retrieve_index_out_is_folder", "retrieve.py index --library LIB --out LIB --rebuild "
     "--vgg_weights VGG --descriptor stats", "--out"),
    ("retrieve_index_out_under_file", "retrieve.py index --library LIB --out BLOCKER/x.idx "
     "--vgg_weights VGG", "--out"),
    ("retrieve_query_sheet_under_file", "retrieve.py query --index ROOT/no.idx --image PHOTO "
     "--sheet BLOCKER/s.png", "--sheet"),
    ("benchmark_out_under_file", "benchmark.py stylizer_quality --out BLOCKER/r.json", "--out"),
    ("benchmark_suite_out_under_file", "benchmark.py all --only nope --out BLOCKER/r.json", "--out"),
]
OUTPUT_QUICK = {"generate_out_dir_is_file", "retrieve_index_out_is_folder",
                "human_eval_make_out_is_file", "human_eval_score_out_under_file",
                "benchmark_out_under_file", "benchmark_suite_out_under_file"}


@pytest.mark.parametrize("line, flag", _cases(OUTPUT_CASES, OUTPUT_QUICK))
def test_output_path_in_the_way_is_one_line_naming_the_flag(files, line, flag):
  error = _one_error(_run(*_fill(line, files)), flag)
  assert any(p in error for p in (files["blocker"], files["lib"], str(files["root"] / "folder.png")))
  assert os.path.isfile(files["blocker"])  # nothing replaced the file in the way


_PROG = textwrap.dedent('''
    import errno, os, sys
    sys.path.insert(0, {experiments!r})
    import cli

    def main(argv):
      kind = sys.argv[-1]
      if kind == "exists":
        os.makedirs({blocker!r}, exist_ok=True)
      elif kind == "isdir":
        open({folder!r}, "w")
      elif kind == "nospace":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      elif kind == "bug":
        raise OSError(errno.EBADF, "an internal bug")

    if __name__ == "__main__":
      cli.run(main, positional=True)
''')


@pytest.mark.parametrize("kind, needles", [
    ("exists", ("blocker", "File exists")),
    ("isdir", ("lib", "Is a directory")),
    ("nospace", ("No space left on device",)),
])
def test_cli_run_turns_oserrors_about_user_paths_into_one_line(files, tmp_path, kind, needles):
  prog = tmp_path / "prog.py"
  prog.write_text(_PROG.format(experiments=EXPERIMENTS, blocker=files["blocker"], folder=files["lib"]))
  proc = subprocess.run([sys.executable, str(prog), kind], capture_output=True, text=True,
                        timeout=60, cwd=ROOT)
  _one_error(proc, *needles)


@pytest.mark.slow
def test_an_oserror_of_a_real_command_is_one_line(files, tmp_path):
  """``python -m jaxstyle.vgg convert --dst`` under a file: caught by ``cli.run``'s safety net."""
  proc = subprocess.run([sys.executable, "-m", "jaxstyle.vgg", "convert", "--src", files["vgg"],
                         "--dst", os.path.join(files["blocker"], "w.npz")], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
  _one_error(proc, files["blocker"], "EEXIST")


def test_cli_run_keeps_the_traceback_of_an_internal_oserror(files, tmp_path):
  prog = tmp_path / "prog.py"
  prog.write_text(_PROG.format(experiments=EXPERIMENTS, blocker=files["blocker"], folder=files["lib"]))
  proc = subprocess.run([sys.executable, str(prog), "bug"], capture_output=True, text=True,
                        timeout=60, cwd=ROOT)
  assert proc.returncode == 1 and "Traceback" in proc.stderr


# ----------------------------------------------------------------------------- item 4: damaged inputs


def _model_record():
  from jaxstyle import config as cfglib
  from jaxstyle.train.stylizer import StylizerTrainConfig
  return cfglib.to_dict(StylizerTrainConfig())


@pytest.mark.parametrize("text", [
    '{"model": ',                                   # cut short: JSONDecodeError
    pytest.param('MODEL_styles_3', marks=SLOW),     # "styles" not a list of names
    pytest.param('MODEL_vgg_7', marks=SLOW),        # "vgg_weights" not an object
    pytest.param('[1, 2]', marks=SLOW),             # not an object at all
])
def test_damaged_run_config_is_one_line(files, tmp_path, text):
  run = tmp_path / "run"
  run.mkdir()
  model = _model_record()
  if text == "MODEL_styles_3":
    text = json.dumps({"model": model, "styles": 3})
  elif text == "MODEL_vgg_7":
    text = json.dumps({"model": model, "styles": ["a"], "vgg_weights": 7})
  (run / "config.json").write_text(text)
  (run / "checkpoints").mkdir()
  for args in (("stylize.py", "--checkpoint", run, "--content", files["photo"], "--style", "a",
                "--out", tmp_path / "o.png"),
               ("personalize.py", "from-choices", "--checkpoint", run, "--photo", files["photo"],
                "--out", tmp_path / "me.style")):
    _one_error(_run(*args), "config.json")


@pytest.mark.slow
def test_truncated_oracle_is_one_line(tmp_path, shared_data):
  from jaxstyle.nets import classifier
  data = open(classifier.default_oracle_path(), "rb").read()
  bad = tmp_path / "oracle.npz"
  bad.write_bytes(data[:3000])
  proc = _run("train_cgan.py", "--mnist_dir", os.path.join(shared_data, "mnist"), "--workdir",
              tmp_path / "run", "--oracle", bad, "--num_steps", "1", "--eval_every", "1")
  _one_error(proc, str(bad))


# ----------------------------------------------------------------------------- item 5: memory


def test_stylize_refuses_a_size_beyond_the_memory_limit(files, tmp_path):
  proc = _run("stylize.py", "--content", files["photo"], "--style", files["style"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "51200", timeout=60)
  line = _one_error(proc, "--size=51200", "--max_memory_gb", "GB")
  assert not (tmp_path / "o_run").exists()
  # The limit is the flag's: a small size under a tiny limit is refused too, naming both numbers.
  proc = _run("stylize.py", "--content", files["photo"], "--style", files["style"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "256", "--max_memory_gb", "0.01")
  line = _one_error(proc, "--max_memory_gb=0.01", "--size=256")
  assert "0.01 GB" in line


@pytest.mark.slow
def test_stylize_network_refuses_a_size_beyond_the_memory_limit(files, tmp_path, tiny_stylizer_run):
  proc = _run("stylize.py", "--checkpoint", tiny_stylizer_run, "--content", files["photo"], "--style",
              "hokusai_great_wave", "--out", tmp_path / "o.png", "--size", "51200", timeout=120)
  _one_error(proc, "--size=51200", "--max_memory_gb")
  assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_generate_refuses_a_size_beyond_the_memory_limit(files, tmp_path):
  proc = _run("generate.py", "--style", files["style"], "--vgg_weights", files["vgg"], "--out_dir",
              tmp_path / "g", "--size", "40000x40000", timeout=60)
  _one_error(proc, "--size=40000x40000", "--max_memory_gb")


@pytest.mark.slow
def test_stylize_with_a_raised_limit_runs(files, tmp_path):
  proc = _run("stylize.py", "--content", files["photo"], "--style", files["style"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "32", "--steps", "1",
              "--max_memory_gb", "64")
  assert proc.returncode == 0, proc.stderr[-2000:]


_MEASURE = textwrap.dedent('''
    import json, resource, sys
    import numpy as np
    from jaxstyle import optimize, vgg
    size, optimizer = int(sys.argv[1]), sys.argv[2]
    w = vgg.load_weights(sys.argv[3])
    cfg = optimize.StylizeConfig(steps=2, optimizer=optimizer)
    rng = np.random.default_rng(0)
    c, s = rng.random((size, size, 3), np.float32), rng.random((size, size, 3), np.float32)
    optimize.stylize(w, c[:32, :32], [s[:32, :32]], config=cfg.replace(steps=1))  # runtime warm
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    optimize.stylize(w, c, [s], config=cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    est = optimize.memory_estimate(cfg, (size, size), [(size, size)], weights=w)
    print(json.dumps({"measured": peak - base, "estimate": est, "base": base}))
''')


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_gatys_memory_estimate_bounds_a_measured_run(vgg_partial_path, optimizer):
  """Peak RSS growth of a 512x512 run <= the estimate (the safety property) and the estimate < 3 GB.

  The measured growth depends on how much the allocator reuses from the warm-up run: the estimate
  was 1.2-1.45x of it on an idle machine, but 3.3x and 12x in loaded clean-clone checks, so the
  upper bound is an absolute one (not absurd for 512 px), not a ratio.
  """
  proc = subprocess.run([sys.executable, "-c", _MEASURE, "512", optimizer, vgg_partial_path],
                        capture_output=True, text=True, timeout=900, cwd=ROOT,
                        env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  m = json.loads(proc.stdout.strip().splitlines()[-1])
  variable = m["estimate"] - _fixed_part(vgg_partial_path)
  assert m["measured"] <= variable and m["estimate"] < 3e9, m


def _fixed_part(vgg_path):
  from jaxstyle import optimize, vgg
  w = vgg.load_weights(vgg_path)
  return optimize.memory_estimate(optimize.StylizeConfig(), (0, 0), [], weights=w)


# ----------------------------------------------------------------------------- item 6: --max_pixels


MAX_PIXEL_CASES = [  # every command that reads images, with --max_pixels 100
    ("stylize", "stylize.py --content PHOTO --style STYLE --vgg_weights VGG --out ROOT/mp.png "
     "--size 32 --steps 1", None),
    ("generate", "generate.py --style STYLE --vgg_weights VGG --out_dir ROOT/mp_g --size 16 "
     "--steps 1 --n 1", None),
    ("retrieve_index", "retrieve.py index --library LIB --out ROOT/mp.idx --vgg_weights VGG "
     "--descriptor stats --scales 32", None),
    ("retrieve_eval", "retrieve.py eval --library LIB --labels ROOT/labels.csv --vgg_weights VGG "
     "--descriptors stats --scales 32", None),
    ("personalize_from_images", "personalize.py from-images --checkpoint ROOT/no_run --liked LIB "
     "--out ROOT/mp.style", None),
    ("personalize_from_choices", "personalize.py from-choices --checkpoint ROOT/no_run --photo PHOTO "
     "--out ROOT/mp.style", None),
    ("human_eval_make", "human_eval.py make --a LIB --b LIB --out ROOT/mp_he", None),
]


@pytest.mark.parametrize("line, _", _cases(MAX_PIXEL_CASES, {"human_eval_make"}))
def test_max_pixels_flag_reaches_every_image_read(files, line, _):
  (files["root"] / "labels.csv").write_text("path,label\nim0.png,a\nim1.png,a\nim2.png,b\n")
  proc = _run(*_fill(line, files), "--max_pixels", "100")
  assert proc.returncode != 0, proc.stdout[-2000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  assert "more than the limit of 100" in proc.stdout + proc.stderr
  assert "--max_pixels" in proc.stdout + proc.stderr


def test_decompression_bomb_error_names_the_flag(files, tmp_path):
  bomb = tmp_path / "bomb.png"
  Image.new("L", (9500, 9500), 128).save(bomb)  # 90.25 M pixels, a 110 KB file
  proc = _run("stylize.py", "--content", bomb, "--style", files["style"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "32")
  _one_error(proc, str(bomb), "--max_pixels")


@pytest.mark.slow
def test_bad_max_pixels_is_one_line(files, tmp_path):
  proc = _run("stylize.py", "--content", files["photo"], "--style", files["style"], "--out",
              tmp_path / "o.png", "--max_pixels", "0")
  _one_error(proc, "--max_pixels")


# ----------------------------------------------------------------------------- item 7: flags not applying


NOT_APPLYING = [  # a flag of another subcommand or mode; the error line names it (and "only")
    ("retrieve_query_library", "retrieve.py query --library L --rebuild --descriptor stats",
     "Unknown command line flag 'library'"),
    ("retrieve_index_checkpoint", "retrieve.py index --library LIB --out x.idx --descriptor stats "
     "--checkpoint RUN", "--checkpoint applies only"),
    ("retrieve_eval_checkpoint", "retrieve.py eval --library LIB --labels l.csv --descriptors stats "
     "--checkpoint RUN", "--checkpoint applies only"),
    ("retrieve_query_thumb", "retrieve.py query --index x.idx --image q.png --thumb 40",
     "--thumb applies only"),
    ("retrieve_query_profile_checkpoint", "retrieve.py query --index x.idx --profile me.style "
     "--checkpoint RUN", "--checkpoint applies only"),
    ("stylize_strength", "stylize.py --content C --style S --out o.png --strength 0.5",
     "--strength applies only"),
    ("stylize_mix", "stylize.py --content C --style S --out o.png --mix a:1", "--mix applies only"),
    ("stylize_network_steps", "stylize.py --checkpoint RUN --content C --style S --out o.png "
     "--steps 10", "--steps applies only"),
    ("stylize_network_workdir", "stylize.py --checkpoint RUN --content C --style S --out o.png "
     "--workdir W", "--workdir applies only"),
    ("generate_photo_count", "generate.py --style S --out_dir D --photo_count 2",
     "--photo_count applies only"),
    ("personalize_port", "personalize.py from-choices --checkpoint RUN --photo P --out me.style "
     "--port 8080", "--port applies only"),
]


@pytest.mark.parametrize("line, needle", _cases(NOT_APPLYING, {"retrieve_query_library"}))
def test_a_flag_that_does_not_apply_is_an_error(files, line, needle):
  _one_error(_run(*_fill(line, files)), needle)


# ----------------------------------------------------------------------------- item 8: --help


COMMANDS = [
    ("stylize.py", "--content"), ("stylize.py export", "--checkpoint"), ("generate.py", "--out_dir"),
    ("personalize.py from-images", "--liked"), ("personalize.py from-choices", "--photo"),
    ("retrieve.py index", "--library"), ("retrieve.py query", "--index"),
    ("retrieve.py eval", "--labels"), ("human_eval.py make", "--pairs"),
    ("human_eval.py score", "--interval"), ("report.py", "--runs"), ("plot.py", "--metrics"),
    ("benchmark.py all", "--preset"),
    ("train_cgan.py", "--workdir"), ("train_classifier.py", "--workdir"),
    ("train_stylizer.py", "--content_dir"), ("-m jaxstyle.vgg convert", "--src"),
    ("-m jaxstyle.vgg info", "--file"), ("-m jaxstyle.vgg download", "--url"),
    ("retrieve.py", "index"), ("personalize.py", "from-images"), ("human_eval.py", "score"),
]
BENCHMARKS = ["vgg", "gatys", "gatys_quality", "cgan", "cgan_quality", "retrieval", "stylizer",
              "stylizer_quality", "stylizer_published", "personalize", "retrieval_quality",
              "stylize_tradeoff"]
QUICK = {"retrieve.py query", "report.py"}


ASK_H = QUICK | {"stylize.py", "-m jaxstyle.vgg info", "train_stylizer.py"}  # -h goes one path


def _help_params():
  out = []
  for command, flag in COMMANDS + [(f"benchmark.py {b}", "--out") for b in BENCHMARKS]:
    for ask in ("--help", "-h") if command in ASK_H else ("--help",):
      marks = () if command in QUICK else (pytest.mark.slow,)
      out.append(pytest.param(command, flag, ask, marks=marks,
                              id=f"{command.replace(' ', '_')}{ask}"))
  return out


def _command(command, *args):
  words = command.split()
  if words[0] == "-m":
    argv = [sys.executable, *words]
  else:
    argv = [sys.executable, os.path.join(EXPERIMENTS, words[0]), *words[1:]]
  return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("command, flag, ask", _help_params())
def test_help_exits_0_and_shows_the_flags(command, flag, ask):
  proc = _command(command, ask)
  assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
  assert flag in proc.stdout, proc.stdout[-3000:]


def test_every_command_is_in_the_help_test():
  """A new main or subcommand must join COMMANDS / BENCHMARKS above."""
  import glob
  mains = {os.path.basename(p) for p in glob.glob(os.path.join(EXPERIMENTS, "*.py"))
           if "__main__" in open(p).read() and not p.endswith("cli.py")}
  assert mains == {c.split()[0] for c, _ in COMMANDS if not c.startswith("-m")}
  sys.path.insert(0, EXPERIMENTS)
  import benchmarks
  assert sorted(benchmarks.load_all()) == sorted(BENCHMARKS)


# ----------------------------------------------------------------------------- item 9: upscaling


def test_upscaled_content_gives_one_warning_line(files, tmp_path):
  proc = _run("stylize.py", "--content", files["tiny"], "--style", files["style"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "32", "--steps", "1")
  assert proc.returncode == 0, proc.stderr[-2000:]
  warnings = [line for line in proc.stderr.splitlines() if "upscaled" in line]
  assert len(warnings) == 1 and warnings[0].startswith("warning: "), proc.stderr[-2000:]
  assert files["tiny"] in warnings[0] and "32x" in warnings[0]


@pytest.mark.slow
def test_upscaled_style_gives_one_warning_line(files, tmp_path):
  proc = _run("stylize.py", "--content", files["photo"], "--style", files["tiny"], "--vgg_weights",
              files["vgg"], "--out", tmp_path / "o.png", "--size", "32", "--steps", "1")
  assert proc.returncode == 0, proc.stderr[-2000:]
  warnings = [line for line in proc.stderr.splitlines() if "upscaled" in line]
  assert len(warnings) == 1 and warnings[0].startswith("warning: ") and files["tiny"] in warnings[0]


def test_load_image_warns_only_beyond_4x(files, tmp_path):
  import warnings
  from jaxstyle import images
  from jaxstyle.errors import JaxstyleWarning
  small = tmp_path / "small.png"
  Image.new("RGB", (10, 8), (1, 2, 3)).save(small)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    images.load_image(small, 40)            # 4x: fine
    images.load_image(small, 32, side="shorter")  # 4x on the shorter side: fine
    images.load_image(files["photo"], 64)   # a downscale
  assert not [w for w in caught if issubclass(w.category, JaxstyleWarning)]
  with pytest.warns(JaxstyleWarning, match=r"small\.png.*10x8.*upscaled 5x"):
    images.load_image(small, 50)
  with pytest.warns(JaxstyleWarning, match="upscaled"):
    images.load_image(small, 41, side="shorter")


@pytest.mark.slow
def test_retrieval_query_of_a_tiny_image_warns(files, tmp_path, vgg_partial_path):
  from jaxstyle import retrieval, vgg
  from jaxstyle.errors import JaxstyleWarning
  weights = vgg.load_weights(vgg_partial_path)
  config = dataclasses.replace(retrieval.get_config("stats"), scales=(32,))
  index, _ = retrieval.build_index(files["lib"], str(tmp_path / "x.idx"), weights, config)
  with pytest.warns(JaxstyleWarning, match=r"tiny\.png.*upscaled"):
    retrieval.query_index(index, weights, [files["tiny"]], k=1)
