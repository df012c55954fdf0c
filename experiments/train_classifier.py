"""Trains the LeNet-style MNIST oracle used by the cGAN metrics.

  python experiments/train_classifier.py --mnist_dir=../shared/data/mnist --workdir=runs/oracle

Every flag but --workdir is a field of ``configs/classifier.py``'s ``Config``.
Writes to --workdir: config.json, metrics.jsonl (the batch loss and accuracy
every 20 steps; one row per epoch: epoch, test accuracy, seconds; then one row
of real-data reference scores: test inception score and FID floors, see
jaxstyle.metrics.reference_scores), tensorboard/ (the same scalars as
TensorBoard events) and oracle.npz (the params, a pickle-free
npz with a JSON __meta__ entry; load it with
jaxstyle.nets.classifier.load_oracle). The committed
jaxstyle/assets/mnist_oracle.npz was made by this script with its default
training flags and --seed=0 (command in BUILD_NOTES.md). A rerun retrains
from scratch (no resume) and overwrites.

In-process: ``train_and_evaluate(configs.classifier.get_config("quick"), workdir)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time

import cli
from cli import FLAGS
from configs import classifier as classifier_config

from jaxstyle import config as cfglib

Config = classifier_config.Config


def define_flags() -> None:
  """--workdir and one flag per ``Config`` field (importing this module defines none)."""
  cli.define_workdir(resumes=False)
  cli.define_config_flags(Config)


def train_and_evaluate(config: Config, workdir: str) -> dict:
  """Trains the oracle of ``config``, writes ``workdir`` and the .npz; returns the summary.

  Raises:
    ConfigError: an invalid setting. UsageError: a setting that does not fit the data.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import data, metrics, rundir  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import classifier  # pylint: disable=g-import-not-at-top
  from jaxstyle.train import classifier as train_lib  # pylint: disable=g-import-not-at-top

  cfglib.validate(config)
  train_u8, train_labels = data.load_mnist("train", config.mnist_dir)
  test_u8, test_labels = data.load_mnist("test", config.mnist_dir)
  if config.num_train:
    train_u8, train_labels = train_u8[:config.num_train], train_labels[:config.num_train]
  if config.num_test:
    test_u8, test_labels = test_u8[:config.num_test], test_labels[:config.num_test]
  n_train = train_u8.shape[0]
  if config.batch_size > n_train:
    raise cli.UsageError(f"--batch_size={config.batch_size} exceeds the {n_train} training images")
  if any(n > n_train for n in config.floor_sizes):
    raise cli.UsageError(f"--floor_sizes={','.join(map(str, config.floor_sizes))} must lie in "
                         f"[2, {n_train}] (the number of training images)")
  train_x = data.to_float_nhwc(train_u8)
  test_x = data.to_float_nhwc(test_u8)

  run = rundir.RunDir(workdir)
  with run.lock():  # one live run per run directory
    run.write_config(cfglib.to_dict(config), num_train_images=int(n_train),
                     num_test_images=int(test_x.shape[0]))
    output = config.output or os.path.join(run.path, "oracle.npz")
    steps_per_epoch = n_train // config.batch_size
    t0 = time.time()
    last_epoch: dict = {}

    def evaluate_epoch(step, variables):
      last_epoch.update(epoch=step // steps_per_epoch, seconds=time.time() - t0,
                        test_accuracy=classifier.Oracle(variables, config.model).accuracy(
                            test_x, test_labels))
      return dict(last_epoch)

    variables = train_lib.train_classifier(train_x, train_labels, config, config.seed,
                                           hooks=((steps_per_epoch, evaluate_epoch),), run_dir=run,
                                           progress=config.progress)
    train_seconds = time.time() - t0
    oracle = classifier.Oracle(variables, config.model)
    reference = metrics.reference_scores(oracle, test_x, test_labels, train_x, config.floor_sizes,
                                         seed=config.seed)
    run.log_metrics(config.epochs * steps_per_epoch, reference)
    run.close()
  command = " ".join(shlex.quote(a) for a in ["python", "experiments/train_classifier.py", *sys.argv[1:]])
  train_settings = [f.name for f in dataclasses.fields(train_lib.TrainConfig) if f.name != "model"]
  meta = {"test_accuracy": last_epoch["test_accuracy"], "num_test_images": int(test_x.shape[0]),
          "num_train_images": int(n_train), "seed": config.seed,
          "train_seconds": round(train_seconds, 1), "command": command, "reference": reference,
          "train_config": {k: getattr(config, k) for k in train_settings},
          "versions": rundir.versions(), "device": str(jax.devices()[0].device_kind)}
  classifier.save_oracle(output, variables, config.model, meta)
  return {"test_accuracy": last_epoch["test_accuracy"], "train_seconds": round(train_seconds, 1),
          **reference, "output": output}


def main(argv):
  del argv
  print(json.dumps(train_and_evaluate(cli.config_from_flags(Config), FLAGS.workdir), indent=1))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
