r"""Trains a label-conditioned DCGAN on MNIST (issue 5).

  python experiments/train_cgan.py --flagfile=experiments/configs/cgan_mnist.flags \
      --mnist_dir=../shared/data/mnist --workdir=/tmp/cgan

The run directory gets config.json, metrics.jsonl (losses every --log_every
steps; oracle accuracy, FID, inception score and diversity every --eval_every
steps), checkpoints/ (Orbax) and samples/step_XXXXX.png (10x10 grid: row d
holds digit d, columns share a fixed noise vector). Rerunning the same command
resumes from the latest checkpoint and gives bit-identical parameters to an
uninterrupted run.

Multi-process (e.g. two local CPU processes):
  python experiments/train_cgan.py ... --coordinator_address=127.0.0.1:12345 \
      --num_processes=2 --process_id=0   (and =1 in the other process)
"""

from __future__ import annotations

import os
import signal

import common  # pylint: disable=g-bad-import-order
from absl import logging


flags = common.flags
FLAGS = common.FLAGS

common.define_workdir()
common.define_seed()
common.define_mnist_dir()
flags.DEFINE_string("dataset", "mnist", "Dataset; only 'mnist' is supported.")
flags.DEFINE_integer("batch_size", 64, "Global batch size (all devices and processes); must be "
                     "divisible by the device count.")
flags.DEFINE_float("learning_rate", 2e-4, "Adam learning rate of G and D.")
flags.DEFINE_float("d_learning_rate", None, "Adam learning rate of D, if different from G's "
                   "(two time-scale updates); default: --learning_rate.")
flags.DEFINE_integer("lr_decay_begin", 0, "With --lr_decay_end: step at which both learning rates "
                     "start to decay linearly.")
flags.DEFINE_integer("lr_decay_end", 0, "Step at which the linearly decaying learning rates reach 0 "
                     "(0: constant learning rates). E.g. --lr_decay_begin=6000 --lr_decay_end=12000.")
flags.DEFINE_float("adam_b1", 0.5, "Adam beta1 of G and D.")
flags.DEFINE_integer("z_dim", 64, "Noise dimension.")
flags.DEFINE_integer("g_width", 64, "Generator channels at 14x14 (twice that at 7x7).")
flags.DEFINE_integer("g_head_width", 0, "Generator channels at full resolution before a last 3x3 "
                     "conv makes the image; 0: no full-resolution layer (the last sub-pixel conv "
                     "makes the image).")
flags.DEFINE_enum("g_norm", "layer", ["layer", "none"], "Generator normalisation after each hidden "
                  "layer: per-example layer norm (GroupNorm, one group) or none.")
flags.DEFINE_integer("d_width", 64, "Discriminator channels at 14x14 (twice that at 7x7).")
flags.DEFINE_integer("embed_dim", 32, "Generator label-embedding size.")
flags.DEFINE_integer("d_feature_dim", 256, "Discriminator feature size used by the projection term.")
flags.DEFINE_float("ema_decay", 0.999, "Decay of the moving average of the generator's weights "
                   "used for samples and evaluation; 0: no average (use the raw generator).")
flags.DEFINE_integer("num_steps", 5000, "Total train steps (a rerun continues up to this step).")
flags.DEFINE_enum("loss", "nonsaturating", ["nonsaturating", "hinge", "lsgan"], "GAN loss.")
flags.DEFINE_string("parallel", "shard_map", "How the step runs: jit (one device), shard_map (all "
                    "devices, default) or pmap.")
flags.DEFINE_integer("checkpoint_every", 500, "Save a checkpoint every this many steps (and at the "
                     "end); 0: only at the end.")
flags.DEFINE_integer("keep", 3, "Checkpoints to keep.")
flags.DEFINE_integer("log_every", 50, "Log losses to metrics.jsonl every this many steps.")
flags.DEFINE_integer("eval_every", 1000, "Evaluate (oracle accuracy, FID, IS, diversity) every this "
                     "many steps and at the end; 0: never.")
flags.DEFINE_integer("eval_samples", 5000, "Generated images per evaluation (balanced over digits).")
flags.DEFINE_string("oracle", None, "Oracle classifier .npz for evaluation (default: the committed "
                    "jaxstyle/assets/mnist_oracle.npz).")
flags.DEFINE_integer("sample_every", 500, "Write samples/step_XXXXX.png every this many steps and "
                     "at the end; 0: never.")
flags.DEFINE_enum("dtype", "float32", ["float32", "float64"], "Parameter and compute dtype; float64 "
                  "(enables jax_enable_x64) is for exactness checks of parallel runs.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many JAX devices (jax_num_cpu_devices) "
                     "for the data-parallel step; 0: the platform default (one, or what XLA_FLAGS "
                     "says). On a 2-core CPU, 2 devices measured 1.35-1.6x faster steps (BUILD_NOTES.md).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 for multi-process runs.")
flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index in a multi-process run.")
flags.DEFINE_integer("debug_kill_at_step", 0, "Testing only: SIGKILL this process after this step "
                     "(0: never).")
flags.DEFINE_bool("debug_kill_during_save", False, "Testing only: with --debug_kill_at_step, kill "
                  "right after the checkpoint save of that step has started, before it completes.")

# Settings that must match to resume a run directory (others, e.g. num_steps, may change).
_RESUME_KEYS = ("dataset", "seed", "batch_size", "learning_rate", "d_learning_rate", "lr_decay_begin",
                "lr_decay_end", "adam_b1", "z_dim", "g_width", "g_head_width", "g_norm",
                "d_width", "embed_dim", "d_feature_dim", "loss", "dtype", "ema_decay")


def _validate(cfg: dict) -> None:
  if cfg["dataset"] != "mnist":
    raise common.UsageError(f"--dataset={cfg['dataset']!r} is not supported; only --dataset=mnist")
  if cfg["parallel"] not in ("jit", "shard_map", "pmap"):
    raise common.UsageError(f"--parallel={cfg['parallel']!r}: choose jit, shard_map or pmap")
  for name in ("batch_size", "num_steps", "z_dim", "g_width", "d_width", "embed_dim", "d_feature_dim",
               "eval_samples"):
    if cfg[name] <= 0:
      raise common.UsageError(f"--{name} must be positive, got {cfg[name]}")
  for name in ("checkpoint_every", "log_every", "eval_every", "sample_every"):
    if cfg[name] < 0:
      raise common.UsageError(f"--{name} must be >= 0, got {cfg[name]}")
  if cfg["keep"] < 1:
    raise common.UsageError(f"--keep must be >= 1, got {cfg['keep']}")
  if not 0 <= cfg["ema_decay"] < 1:
    raise common.UsageError(f"--ema_decay must be in [0, 1), got {cfg['ema_decay']}")
  for name in ("learning_rate", "d_learning_rate"):
    if cfg[name] is not None and not cfg[name] > 0:
      raise common.UsageError(f"--{name} must be positive, got {cfg[name]}")
  if cfg["lr_decay_end"] < 0:
    raise common.UsageError(f"--lr_decay_end must be >= 0 (0: no decay), got {cfg['lr_decay_end']}")
  if cfg["lr_decay_begin"] and not cfg["lr_decay_end"]:
    raise common.UsageError("--lr_decay_begin needs a positive --lr_decay_end")
  if cfg["lr_decay_end"] and not 0 <= cfg["lr_decay_begin"] < cfg["lr_decay_end"]:
    raise common.UsageError(f"--lr_decay_begin={cfg['lr_decay_begin']} must be in 0..--lr_decay_end-1 "
                            f"(--lr_decay_end={cfg['lr_decay_end']})")
  if cfg["g_head_width"] < 0:
    raise common.UsageError(f"--g_head_width must be >= 0, got {cfg['g_head_width']}")
  if cfg["cpu_devices"] < 0:
    raise common.UsageError(f"--cpu_devices must be >= 0, got {cfg['cpu_devices']}")
  if cfg["mnist_dir"] is not None and not os.path.isdir(cfg["mnist_dir"]):
    raise common.UsageError(f"--mnist_dir={cfg['mnist_dir']!r} is not a directory")


def _check_resume(run, cfg: dict) -> None:
  import json  # pylint: disable=g-import-not-at-top
  if not os.path.exists(run.config_path):
    return
  with open(run.config_path) as f:
    old = json.load(f).get("config", {})
  diff = [k for k in _RESUME_KEYS if k in old and old[k] != cfg[k]]
  if diff:
    k = diff[0]
    raise common.UsageError(f"--workdir {run.path} holds a run with --{k}={old[k]} (now {cfg[k]}); "
                            "use a fresh --workdir or the same settings to resume")


def train_and_evaluate(cfg: dict) -> dict:
  """Trains (or resumes) the cGAN described by ``cfg`` (the flag values); returns the last metrics."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import checkpoint, data, images, metrics, parallel, rundir, train  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import cgan, classifier  # pylint: disable=g-import-not-at-top

  _validate(cfg)
  if cfg["dtype"] == "float64":
    jax.config.update("jax_enable_x64", True)
  if cfg["cpu_devices"]:
    jax.config.update("jax_num_cpu_devices", cfg["cpu_devices"])
  parallel.initialize_distributed(cfg["coordinator_address"], cfg["num_processes"], cfg["process_id"])
  runner = parallel.DataParallel(cfg["parallel"])
  runner.check_batch_size(cfg["batch_size"])
  is_main = jax.process_index() == 0

  train_images, train_labels = data.load_mnist("train", cfg["mnist_dir"])
  iterator = data.BatchIterator({"image": train_images, "label": train_labels}, cfg["batch_size"],
                                seed=cfg["seed"], process_index=jax.process_index(),
                                process_count=jax.process_count())

  def batches(step):
    b = iterator.batch(step)
    return {"image": data.to_float_nhwc(b["image"]).astype(cfg["dtype"]), "label": b["label"]}

  model_cfg = cgan.CGANConfig(z_dim=cfg["z_dim"], g_width=cfg["g_width"], g_head_width=cfg["g_head_width"],
                              g_norm=cfg["g_norm"], d_width=cfg["d_width"],
                              embed_dim=cfg["embed_dim"], d_feature_dim=cfg["d_feature_dim"],
                              dtype=cfg["dtype"])
  d_lr = cfg["learning_rate"] if cfg["d_learning_rate"] is None else cfg["d_learning_rate"]
  decay = (cfg["lr_decay_begin"], cfg["lr_decay_end"])
  g_tx = train.adam(train.linear_decay(cfg["learning_rate"], *decay), b1=cfg["adam_b1"])
  d_tx = train.adam(train.linear_decay(d_lr, *decay), b1=cfg["adam_b1"])
  use_ema = cfg["ema_decay"] > 0
  step_fn = runner.compile(train.make_cgan_step(model_cfg, g_tx, d_tx, cfg["loss"],
                                                ema_decay=cfg["ema_decay"]))

  def generator_params(state):
    return runner.get_state(state.ema["g"] if use_ema else state.params["g"])

  run = rundir.RunDir(cfg["workdir"])
  _check_resume(run, cfg)
  if is_main:
    run.write_config(cfg, model=model_cfg.__dict__, num_devices=runner.num_devices)
  ckpt = checkpoint.Checkpointer(run.checkpoint_dir, every=cfg["checkpoint_every"], keep=cfg["keep"])

  sampler = train.make_cgan_sampler(model_cfg)
  root = jax.random.key(cfg["seed"])
  hooks = []
  if cfg["sample_every"] and is_main:
    z_row = np.asarray(jax.random.normal(jax.random.fold_in(root, 2), (10, model_cfg.z_dim)))
    grid_z = np.tile(z_row, (10, 1))  # row d, column j: digit d with noise j
    grid_y = np.repeat(np.arange(10, dtype=np.int32), 10)

    def write_samples(step, state):
      g_params = generator_params(state)
      grid = images.make_grid(np.asarray(sampler(g_params, grid_z, grid_y)), nrow=10)
      images.save_image(os.path.join(run.samples_dir, f"step_{step:05d}.png"), grid)
      return None

    hooks.append((cfg["sample_every"], write_samples))

  last_eval: dict = {}
  if cfg["eval_every"] and is_main:
    oracle = classifier.load_oracle(cfg["oracle"])
    test_images, test_labels = data.load_mnist("test", cfg["mnist_dir"])
    evaluator = metrics.Evaluator(oracle, data.to_float_nhwc(test_images), test_labels,
                                  num_samples=cfg["eval_samples"], sample_batch_size=500)
    floor_idx = np.random.default_rng(cfg["seed"]).permutation(len(train_images))[:cfg["eval_samples"]]
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

    hooks.append((cfg["eval_every"], evaluate))

  def on_step_end(step):
    if cfg["debug_kill_at_step"] and step == cfg["debug_kill_at_step"]:
      if not cfg["debug_kill_during_save"]:
        ckpt.wait()
      os.kill(os.getpid(), signal.SIGKILL)

  if cfg["debug_kill_during_save"] and cfg["debug_kill_at_step"]:
    # Kill from inside the save: after Orbax has started writing, before it finalises.
    original_save = ckpt.save

    def save_then_die(step, state, force=False):
      started = original_save(step, state, force)
      if started and step == cfg["debug_kill_at_step"]:
        os.kill(os.getpid(), signal.SIGKILL)
      return started

    ckpt.save = save_then_die

  final_state, start = train.fit(
      runner=runner, step_fn=step_fn,
      init_state=lambda: jax.tree.map(np.asarray, train.init_cgan_state(model_cfg, cfg["seed"], g_tx, d_tx,
                                                                  g_ema=use_ema)),
      batches=batches, num_steps=cfg["num_steps"], checkpointer=ckpt, run_dir=run,
      log_every=cfg["log_every"], hooks=tuple(hooks), on_step_end=on_step_end,
      progress=cfg["progress"], desc="cgan", is_main=is_main)
  ckpt.close()
  del final_state
  rows = run.read_metrics() if is_main else []
  summary = {"resumed_from": start, **(rows[-1] if rows else {}), **last_eval}
  return summary


def main(argv):
  del argv
  if not FLAGS["verbosity"].present:  # Orbax logs every save at INFO level
    logging.set_verbosity(logging.WARNING)
  names = ["workdir", "seed", "mnist_dir", "dataset", "batch_size", "learning_rate", "d_learning_rate",
           "lr_decay_begin", "lr_decay_end", "adam_b1", "z_dim", "g_width", "g_head_width", "g_norm",
           "d_width", "embed_dim", "d_feature_dim", "ema_decay", "num_steps", "loss", "parallel",
           "checkpoint_every", "keep", "log_every", "eval_every", "eval_samples", "oracle",
           "sample_every", "dtype", "progress", "cpu_devices", "coordinator_address", "num_processes",
           "process_id", "debug_kill_at_step", "debug_kill_during_save"]
  cfg = {n: FLAGS[n].value for n in names}
  summary = train_and_evaluate(cfg)
  import json  # pylint: disable=g-import-not-at-top
  print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  common.run(main)
