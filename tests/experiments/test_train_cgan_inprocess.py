"""``train_cgan.train_and_evaluate(config, workdir)`` called in-process on a tiny config."""

import dataclasses
import json
import os

import pytest
import train_cgan
from configs import cgan as cgan_config

from jaxstyle import config as cfglib
from jaxstyle.errors import ConfigError


def test_train_and_evaluate_in_process_then_resume(tmp_path, shared_data):
  config = cgan_config.Config(
      mnist_dir=os.path.join(shared_data, "mnist"), batch_size=16, z_dim=8, g_width=8, d_width=8,
      embed_dim=4, d_feature_dim=16, num_steps=4, parallel="jit", log_every=2, checkpoint_every=2,
      eval_every=4, eval_samples=100, sample_every=0, progress=False, seed=1)
  workdir = str(tmp_path / "run")
  summary = train_cgan.train_and_evaluate(config, workdir)
  assert summary["resumed_from"] == 0 and summary["step"] == 4
  assert 0.0 <= summary["oracle_accuracy"] <= 1.0 and summary["fid"] > 0
  record = json.loads(open(os.path.join(workdir, "config.json")).read())
  assert cfglib.from_dict(cgan_config.Config, record["config"]) == config
  assert record["model"] == cfglib.to_dict(cgan_config.model_config(config))
  # The same config resumes at the end; a resume=True setting that changed is refused.
  assert train_cgan.train_and_evaluate(config, workdir)["resumed_from"] == 4
  with pytest.raises(ConfigError, match="--loss=nonsaturating"):
    train_cgan.train_and_evaluate(dataclasses.replace(config, loss="hinge"), workdir)
  with pytest.raises(ConfigError, match="eval_samples"):
    train_cgan.train_and_evaluate(dataclasses.replace(config, eval_samples=0), workdir)
