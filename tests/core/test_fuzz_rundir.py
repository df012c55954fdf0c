"""Fuzz: the run-directory config.json readers and the report's result files (metrics.jsonl:
test_fuzz_metrics.py).

* ``RunDir.check_resume`` (the trainers' resume check) on a ``config.json``
  written by ``RunDir.write_config`` for the cGAN experiment's ``Config``,
  mutated: resumes, or raises ``ConfigError`` naming the file.
* ``load_stylizer``'s reading of a stylizer run's ``config.json``
  (``CheckpointError``), and what personalize reads from it besides
  (``space.collection_files``, ``exemplars.default_photo_dir``: documented to
  fall back to none, so they must not raise at all).
* The report's ``read_source`` on a committed benchmark record
  (``ReportInputError``).
"""

import json
import os
import types

import pytest

import fuzz_testlib as fz
from configs import cgan as cgan_config
from jaxstyle import config as cfglib
from jaxstyle import inference
from jaxstyle.errors import CheckpointError, ConfigError
from jaxstyle.personalize import exemplars, space
from jaxstyle.rundir import RunDir
from jaxstyle.train.stylizer import StylizerTrainConfig
from reporting import load as report_load

SEED = 13


def test_fuzz_check_resume(tmp_path):
  config = cgan_config.get_config("quick")
  seed_dir = tmp_path / "seed"
  RunDir(str(seed_dir)).write_config(cfglib.to_dict(config))
  RunDir(str(seed_dir)).check_resume(cgan_config.Config, config)  # the seed itself resumes
  text = (seed_dir / "config.json").read_text()
  fz.fuzz("RunDir.check_resume", 300, SEED, str(tmp_path), ".json", fz.json_text_mutators(text),
          fz.in_folder(str(tmp_path), "config.json",
                      lambda run: RunDir(run).check_resume(cgan_config.Config, config)),
          (ConfigError,), names_file=False)


def test_fuzz_stylizer_run_config(tmp_path):
  """load_stylizer reads config.json first; the run has no checkpoints, so a readable one ends
  in "no checkpoints/ yet" (each such case costs an abstract init of the stylizer: few cases)."""
  record = {"model": cfglib.to_dict(StylizerTrainConfig()), "styles": ["a", "b"],
            "vgg_weights": {"path": "/nowhere/vgg.npz"}}
  text = json.dumps(record, indent=1)
  seed_run = tmp_path / "seed"
  seed_run.mkdir()
  (seed_run / "config.json").write_text(text)
  with pytest.raises(CheckpointError, match="no checkpoints"):  # read, then stopped there
    inference.load_stylizer(str(seed_run))
  fz.fuzz("inference.load_stylizer[config.json]", 100, SEED, str(tmp_path), ".json",
          fz.json_text_mutators(text),
          fz.in_folder(str(tmp_path), "config.json", inference.load_stylizer), (CheckpointError,),
          names_file=False)


def test_fuzz_personalize_run_config_lookups(tmp_path):
  record = {"config": {"eval_dir": str(tmp_path), "content_dir": str(tmp_path)},
            "style_files": [__file__], "encoder_style_files": [], "unseen_style_files": [__file__]}
  text = json.dumps(record, indent=1)

  def lookups(run_dir):
    model = types.SimpleNamespace(path=run_dir)
    space.collection_files(model)
    exemplars.default_photo_dir(model)

  seed_run = fz.in_folder(str(tmp_path), "config.json", lambda run: types.SimpleNamespace(path=run))
  model = seed_run(fz.write(str(tmp_path / "seed.json"), text.encode()))
  assert space.collection_files(model) == [__file__]  # the seed itself is valid
  assert exemplars.default_photo_dir(model) == str(tmp_path)
  fz.fuzz("personalize.collection_files+default_photo_dir", 200, SEED, str(tmp_path), ".json",
          fz.json_text_mutators(text), fz.in_folder(str(tmp_path), "config.json", lookups), (),
          names_file=False)


def test_fuzz_report_read_source(tmp_path):
  path = os.path.join(os.path.dirname(report_load.__file__), "..", "results",
                      "retrieval_quality.json")
  text = open(path, encoding="utf-8").read()
  report_load.read_source(path)  # the seed itself is valid
  fz.fuzz("report.read_source", 200, SEED, str(tmp_path), ".json", fz.json_text_mutators(text),
          report_load.read_source, (report_load.ReportInputError,))
