"""Trains the LeNet-style MNIST oracle used by the cGAN metrics.

  python experiments/train_classifier.py --mnist_dir=../shared/data/mnist --workdir=runs/oracle

Writes to --workdir: config.json, metrics.jsonl (one row per epoch: train loss,
train/test accuracy, seconds; then one row of real-data reference scores: test
inception score and FID floors, see jaxstyle.metrics.reference_scores) and
oracle.npz (the params, a pickle-free npz with a JSON __meta__ entry; load it
with jaxstyle.nets.classifier.load_oracle).
The committed jaxstyle/assets/mnist_oracle.npz was made by this script with
its default training flags and --seed=0 (command in BUILD_NOTES.md).
Training takes a few minutes on a 2-core CPU, so a rerun retrains from
scratch (no resume) and overwrites.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time

import common
from absl import flags

FLAGS = flags.FLAGS

common.define_workdir(resumes=False)
common.define_seed()
common.define_mnist_dir()
flags.DEFINE_integer("epochs", 5, "Passes over the training set.")
flags.DEFINE_integer("batch_size", 128, "Training batch size (one device).")
flags.DEFINE_float("learning_rate", 1e-3, "Peak AdamW learning rate (cosine-decayed to 0).")
flags.DEFINE_float("weight_decay", 1e-4, "AdamW decoupled weight decay.")
flags.DEFINE_integer("num_train", 0, "Use only the first N training images (0 = all 60,000). "
                     "For quick tests.")
flags.DEFINE_integer("num_test", 0, "Evaluate on only the first N test images (0 = all 10,000).")
flags.DEFINE_list("floor_sizes", ["1000", "2000", "5000", "10000"],
                  "After training, record FID floors: for each N, the FID of N random training "
                  "images vs the whole test set (plus all train vs all test), in the saved meta and "
                  "metrics.jsonl. Empty to skip.")
flags.DEFINE_string("output", None, "Where to write the oracle .npz. Default: WORKDIR/oracle.npz.")


def _load(split):
  from jaxstyle import data
  if FLAGS.mnist_dir is None and hasattr(data, "load_mnist"):
    return data.load_mnist(split)
  if FLAGS.mnist_dir is None:
    raise common.UsageError("--mnist_dir is required (folder with the MNIST IDX files)")
  if hasattr(data, "load_mnist"):
    return data.load_mnist(split, mnist_dir=FLAGS.mnist_dir)
  return data.load_mnist_idx(FLAGS.mnist_dir, split)


def main(argv):
  del argv
  for name in ("epochs", "batch_size", "num_train", "num_test"):
    if getattr(FLAGS, name) < (0 if name.startswith("num_") else 1):
      raise common.UsageError(f"--{name}={getattr(FLAGS, name)} must be "
                              f"{'>= 0' if name.startswith('num_') else '>= 1'}")
  try:
    floor_sizes = [int(n) for n in FLAGS.floor_sizes]
  except ValueError:
    raise common.UsageError(f"--floor_sizes={','.join(FLAGS.floor_sizes)} must be integers") from None
  if FLAGS.learning_rate <= 0:
    raise common.UsageError(f"--learning_rate={FLAGS.learning_rate} must be > 0")

  import jax
  import numpy as np
  from tqdm import tqdm

  from jaxstyle import metrics, rundir
  from jaxstyle.nets import classifier

  train_u8, train_labels = _load("train")
  test_u8, test_labels = _load("test")
  if FLAGS.num_train:
    train_u8, train_labels = train_u8[:FLAGS.num_train], train_labels[:FLAGS.num_train]
  if FLAGS.num_test:
    test_u8, test_labels = test_u8[:FLAGS.num_test], test_labels[:FLAGS.num_test]
  if train_u8.shape[0] < FLAGS.batch_size:
    raise common.UsageError(f"--batch_size={FLAGS.batch_size} exceeds the {train_u8.shape[0]} "
                            "training images")
  if any(not 2 <= n <= train_u8.shape[0] for n in floor_sizes):
    raise common.UsageError(f"--floor_sizes={','.join(FLAGS.floor_sizes)} must lie in "
                            f"[2, {train_u8.shape[0]}] (the number of training images)")
  train_x = classifier.to_float_images(train_u8)
  test_x = classifier.to_float_images(test_u8)

  cfg = classifier.TrainConfig(epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                               learning_rate=FLAGS.learning_rate, weight_decay=FLAGS.weight_decay)
  run = rundir.RunDir(FLAGS.workdir)
  if os.path.exists(run.metrics_path):
    os.remove(run.metrics_path)  # no resume: a rerun starts over
  command = " ".join(shlex.quote(a) for a in ["python", "experiments/train_classifier.py", *sys.argv[1:]])
  run.write_config({**FLAGS.flag_values_dict(), "train_config": dataclasses.asdict(cfg)},
                   num_train_images=int(train_x.shape[0]), num_test_images=int(test_x.shape[0]))
  output = FLAGS.output or os.path.join(run.path, "oracle.npz")

  steps_per_epoch = train_x.shape[0] // cfg.batch_size
  bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="oracle", unit="step", dynamic_ncols=True)
  losses, accs = [], []
  t0 = time.time()
  result = {}

  def on_step(step, metrics):
    if step % 20 == 0 or step == steps_per_epoch * cfg.epochs:
      loss, acc = float(metrics["loss"]), float(metrics["accuracy"])
      losses.append(loss)
      accs.append(acc)
      bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}")
    bar.update(1)

  def on_epoch(epoch, params):
    oracle = classifier.Oracle(params, cfg.model)
    test_acc = oracle.accuracy(test_x, test_labels)
    row = run.log_metrics((epoch + 1) * steps_per_epoch, {
        "epoch": epoch + 1, "train_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
        "train_accuracy": float(np.mean(accs[-20:])) if accs else float("nan"),
        "test_accuracy": test_acc, "seconds": time.time() - t0})
    bar.write(f"epoch {epoch + 1}: test accuracy {test_acc:.4f}")
    result.update(row)

  params = classifier.train(train_x, train_labels, cfg, jax.random.key(FLAGS.seed),
                            on_step=on_step, on_epoch=on_epoch)
  bar.close()
  train_seconds = time.time() - t0
  reference = metrics.reference_scores(classifier.Oracle(params, cfg.model), test_x, test_labels,
                                       train_x, floor_sizes, seed=FLAGS.seed)
  run.log_metrics(cfg.epochs * steps_per_epoch, reference)
  meta = {"test_accuracy": result["test_accuracy"], "num_test_images": int(test_x.shape[0]),
          "num_train_images": int(train_x.shape[0]), "seed": FLAGS.seed,
          "train_seconds": round(train_seconds, 1), "command": command, "reference": reference,
          "train_config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "model"},
          "versions": rundir.versions(), "device": str(jax.devices()[0].device_kind)}
  classifier.save_oracle(output, params, cfg.model, meta)
  print(json.dumps({"test_accuracy": result["test_accuracy"], "train_seconds": round(train_seconds, 1),
                    **reference, "output": output}, indent=1))


if __name__ == "__main__":
  common.run(main)
