r"""Trains a label-conditioned DCGAN on MNIST (issue 5).

  python experiments/train_cgan.py --flagfile=experiments/configs/cgan_mnist.flags \
      --mnist_dir=../shared/data/mnist --workdir=/tmp/cgan

Every flag but --workdir is a field of ``configs/cgan.py``'s ``Config`` (its
help, default and checks come from there). The run directory gets config.json
(the config, versions, device count), metrics.jsonl (losses every --log_every
steps; oracle accuracy, FID, inception score and diversity every --eval_every
steps), checkpoints/ (Orbax), samples/step_XXXXX.png (10x10 grid: row d
holds digit d, columns share a fixed noise vector) and tensorboard/ (every
metric and sample grid as TensorBoard events). Rerunning the same command
resumes from the latest checkpoint and gives bit-identical parameters to an
uninterrupted run; the settings marked ``resume=True`` must not change.

Multi-process (e.g. two local CPU processes):
  python experiments/train_cgan.py ... --coordinator_address=127.0.0.1:12345 \
      --num_processes=2 --process_id=0   (and =1 in the other process)

In-process: ``train_and_evaluate(configs.cgan.get_config("quick"), workdir)``.
"""

from __future__ import annotations

import json

import cli  # pylint: disable=g-bad-import-order
import training
from absl import logging
from cli import FLAGS
from configs import cgan as cgan_config

from jaxstyle import config as cfglib

Config = cgan_config.Config


def define_flags() -> None:
  """--workdir and one flag per ``Config`` field (importing this module defines none)."""
  cli.define_workdir()
  cli.define_config_flags(Config)


def train_and_evaluate(config: Config, workdir: str) -> dict:
  """Trains (or resumes) the cGAN of ``config`` in ``workdir``; returns the last metrics.

  Returns:
    ``{"resumed_from": step, "step": ..., <last logged losses>, <last evaluation>}``.

  Raises:
    ConfigError: an invalid setting, or ``workdir`` holds a run with other
      ``resume=True`` settings.
  """
  import jax  # pylint: disable=g-import-not-at-top

  cfglib.validate(config)
  if config.dtype == "float64":
    jax.config.update("jax_enable_x64", True)
  runner = training.start_devices(config)
  runner.check_batch_size(config.batch_size)
  is_main = jax.process_index() == 0
  with training.open_run(workdir, Config, config, is_main) as run:
    return _train(config, run, runner, is_main)


def _train(config: Config, run, runner, is_main: bool) -> dict:
  """The body of ``train_and_evaluate`` once the run directory is locked."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import checkpoint, data, images, metrics, train  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import classifier  # pylint: disable=g-import-not-at-top

  train_images, train_labels = data.load_mnist("train", config.mnist_dir)
  iterator = data.BatchIterator({"image": train_images, "label": train_labels}, config.batch_size,
                                seed=config.seed, process_index=jax.process_index(),
                                process_count=jax.process_count())

  def clean_batches(step):
    b = iterator.batch(step)
    return {"image": data.to_float_nhwc(b["image"]).astype(config.dtype), "label": b["label"]}

  batches = training.poison_batches(config, clean_batches)

  model_cfg = cgan_config.model_config(config)
  g_tx, d_tx = cgan_config.optimizers(config)
  use_ema = config.ema_decay > 0
  step_fn = runner.compile(train.guard_nonfinite(train.make_cgan_step(
      model_cfg, g_tx, d_tx, config.loss, ema_decay=config.ema_decay)))

  def generator_params(state):
    return runner.get_state(state.ema["g"] if use_ema else state.params["g"])

  if is_main:
    run.write_config(cfglib.to_dict(config), model=cfglib.to_dict(model_cfg),
                     num_devices=runner.num_devices)
  ckpt = checkpoint.Checkpointer(run.checkpoint_dir, every=config.checkpoint_every, keep=config.keep)

  sampler = train.make_cgan_sampler(model_cfg)
  root = jax.random.key(config.seed)
  hooks = []
  if config.sample_every and is_main:
    z_row = np.asarray(jax.random.normal(jax.random.fold_in(root, 2), (10, model_cfg.z_dim)))
    grid_z = np.tile(z_row, (10, 1))  # row d, column j: digit d with noise j
    grid_y = np.repeat(np.arange(10, dtype=np.int32), 10)

    def write_samples(step, state):
      run.save_sample(step, images.make_grid(np.asarray(sampler(generator_params(state), grid_z, grid_y)),
                                             nrow=10))

    hooks.append((config.sample_every, write_samples))

  last_eval: dict = {}
  if config.eval_every and is_main:
    oracle = classifier.load_oracle(config.oracle)
    test_images, test_labels = data.load_mnist("test", config.mnist_dir)
    evaluator = metrics.Evaluator(oracle, data.to_float_nhwc(test_images), test_labels,
                                  num_samples=config.eval_samples, sample_batch_size=500)
    floor_idx = np.random.default_rng(config.seed).permutation(len(train_images))[:config.eval_samples]
    fid_floor = evaluator.fid_floor(data.to_float_nhwc(train_images[floor_idx]))

    def evaluate(step, state):
      g_params = generator_params(state)

      def sample_fn(key, labels):
        z = jax.random.normal(key, (labels.shape[0], model_cfg.z_dim))
        return sampler(g_params, z, labels)

      out = evaluator(sample_fn, jax.random.fold_in(jax.random.fold_in(root, 3), step))
      out["fid_floor"] = fid_floor
      out["fid_ratio"] = out["fid"] / fid_floor
      last_eval.clear()
      last_eval.update(out)
      return out

    hooks.append((config.eval_every, evaluate))

  _, start = train.fit(
      runner=runner, step_fn=step_fn,
      init_state=lambda: jax.tree.map(np.asarray, train.init_cgan_state(
          model_cfg, config.seed, g_tx, d_tx, g_ema=use_ema)),
      batches=batches, num_steps=config.num_steps, checkpointer=ckpt, run_dir=run,
      log_every=config.log_every, hooks=tuple(hooks),
      on_step_end=training.kill_switch(config, ckpt),
      progress=config.progress, desc="cgan", is_main=is_main, skip_nonfinite=config.skip_nonfinite)
  ckpt.close()
  run.close()
  rows = run.read_metrics() if is_main else []
  return {"resumed_from": start, **(rows[-1] if rows else {}), **last_eval}


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:  # Orbax logs every save at INFO level
    logging.set_verbosity(logging.WARNING)
  summary = train_and_evaluate(cli.config_from_flags(Config), FLAGS.workdir)
  print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
