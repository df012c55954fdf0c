"""cGAN train steps/s: jaxstyle vs an in-house PyTorch equivalent, in one run.

  python experiments/benchmark.py cgan [--batch_size 64 --g_width 32 --d_width 32 --steps 30]
  python experiments/benchmark.py cgan --g_head_width 16 --loss hinge   # the shipped configs' model

The model and optimiser flags are ``experiments/configs/cgan.py``'s ``Config``
fields (the architecture, ``--loss``, ``--learning_rate``,
``--d_learning_rate``, ``--adam_b1``, ``--batch_size``, ``--seed``,
``--cpu_devices``), with the benchmark's own defaults for the widths (32) and
``--cpu_devices`` (2); the training-loop settings (schedules, EMA, checkpoints,
evaluation) do not apply. ``--steps``, ``--warmup``, ``--repeats``,
the PyTorch grid's ``--torch_modes``, ``--layouts``, ``--torch_threads`` and
``--no_torch`` are the benchmark's own.

jaxstyle runs in two setups, one device (``jit``) and, when there are several
devices (``--cpu_devices`` on a CPU), the batch split over all of them with
shard_map (what train_cgan.py does); PyTorch runs in every variant of
``benchmarks.timing.TorchGrid`` (eager and ``torch.compile`` of both nets,
NCHW and channels_last, 1 and all threads). The ratio compares the fastest
setup of each, so neither side is handicapped by a threading, layout or
compile choice. jaxstyle's step is compiled first (``compile_s``); each setup
is timed in blocks of ``--steps`` steps (``benchmarks.timing.timed``: the
first block apart as ``first_block_s``, the median of ``--repeats`` blocks,
min and max as ``spread_ms_per_step``).

Both sides train the same architecture (``jaxstyle.nets.cgan``; the twin is
``peers.cgan``) with the same alternating update under ``--loss`` (D step on
real + detached fake, then G step against the updated D; the generator runs
forward once), Adam, on the same random batch. PyTorch runs only if
importable. Results: steps/s of each and the ratio ``jax_over_torch``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import cli
from benchmarks import timing
from benchmarks.registry import register
from jaxstyle import config as cfglib

# The benchmark's defaults where they differ from Config's (the first-pass model of BUILD_NOTES.md).
DEFAULTS = {"g_width": 32, "d_width": 32, "cpu_devices": 2}
# Config fields the benchmark uses besides the architecture (jaxstyle.nets.cgan.CGANConfig).
_TRAIN_FIELDS = ("seed", "batch_size", "loss", "learning_rate", "d_learning_rate", "adam_b1",
                 "cpu_devices")
# Architecture fields the PyTorch twin does not vary (MNIST shape, float32).
_FIXED_MODEL_FIELDS = ("image_size", "channels", "dtype")


def _config_cls() -> type:
  from configs import cgan as cgan_configs  # pylint: disable=g-import-not-at-top
  return cgan_configs.Config


def used_fields() -> tuple[str, ...]:
  """The ``Config`` fields this benchmark reads (all others keep their defaults, unused)."""
  from jaxstyle.nets import cgan  # pylint: disable=g-import-not-at-top
  model = [f.name for f in dataclasses.fields(cgan.CGANConfig) if f.name not in _FIXED_MODEL_FIELDS]
  return tuple(model) + _TRAIN_FIELDS


@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The benchmark's own flags (and the PyTorch grid's); ``config`` is the cGAN ``Config``."""
  steps: int = cfglib.setting(30, "Steps per timed block.", ge=1)
  warmup: int = cfglib.setting(1, "Untimed blocks before the timed ones (the first, after "
                               "jaxstyle's compilation, is reported as first_block_s).", ge=1)
  repeats: int = cfglib.setting(3, "Timed blocks of --steps steps per setup (the median is "
                                "reported, with min and max).", ge=1)
  no_torch: bool = cfglib.setting(False, "Skip PyTorch.")
  config: Any = None  # configs/cgan.py Config (not a flag itself; its fields are)


def define_flags() -> None:
  cli.define_config_flags(Options)
  config_cls = _config_cls()
  used = set(used_fields())
  cli.define_config_flags(config_cls, defaults=DEFAULTS,
                          exclude=[s.name for s in cfglib.settings(config_cls) if s.name not in used])


def options_from_flags() -> Options:
  return cli.config_from_flags(Options, config=cli.config_from_flags(_config_cls()))


def default_options() -> Options:
  """The options without flags: the benchmark's defaults, ``Config`` with ``DEFAULTS``."""
  return Options(config=cfglib.validate(_config_cls()(**DEFAULTS)))


def config_dict(options: Options) -> dict:
  """The record's config: the benchmark's options and the ``Config`` fields it uses."""
  out = cfglib.to_dict(options)
  used = set(used_fields())
  out["config"] = {k: v for k, v in out["config"].items() if k in used}
  return out


def _batch(cfg) -> tuple[Any, Any]:
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(cfg.seed)
  return (rng.random((cfg.batch_size, 28, 28, 1)).astype(np.float32),
          rng.integers(0, cfg.num_classes, cfg.batch_size).astype(np.int32))


def _d_learning_rate(cfg) -> float:
  return cfg.d_learning_rate if cfg.d_learning_rate is not None else cfg.learning_rate


def _best(setups: dict[str, dict]) -> dict:
  best = min(setups, key=lambda k: setups[k]["ms_per_step"])
  return {**setups[best], "setup": best, "setups": setups}


def bench_jax(options: Options) -> dict:
  """Times jaxstyle's step on one device and, with several devices, data-parallel."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import parallel  # pylint: disable=g-import-not-at-top
  # Before the backend starts; in a suite, benchmark.py all has already asked for the count.
  parallel.request_cpu_devices(options.config.cpu_devices)
  matmul = timing.matmul_gflops(seed=options.config.seed)
  setups = {"jit": _bench_jax_setup(options, "jit", matmul)}
  if jax.device_count() > 1:
    setups[f"shard_map_{jax.device_count()}dev"] = _bench_jax_setup(options, "shard_map", matmul)
  return {**_best(setups), "matmul_f32": matmul}


def _bench_jax_setup(options: Options, mode: str, matmul: dict) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from configs import cgan as cgan_configs  # pylint: disable=g-import-not-at-top
  from jaxstyle import parallel, train  # pylint: disable=g-import-not-at-top

  cfg = options.config
  model = cgan_configs.model_config(cfg)
  g_tx = train.adam(cfg.learning_rate, b1=cfg.adam_b1)
  d_tx = train.adam(_d_learning_rate(cfg), b1=cfg.adam_b1)
  runner = parallel.DataParallel(mode)
  runner.check_batch_size(cfg.batch_size)
  state = runner.put_state(jax.tree.map(np.asarray, train.init_cgan_state(model, cfg.seed, g_tx, d_tx)))
  x, y = _batch(cfg)
  batch = runner.put_batch({"image": x, "label": y})
  t0 = time.perf_counter()
  step = runner.compile(train.make_cgan_step(model, g_tx, d_tx, cfg.loss)).lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  box = {"state": state}

  def block():
    for _ in range(options.steps):
      box["state"], box["m"] = step(box["state"], batch)
    jax.block_until_ready(box["m"])

  t = timing.timed(block, options.warmup, options.repeats)
  m, best = box["m"], t["median_ms"] / 1e3
  n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(runner.get_state(box["state"]).params))
  return {"steps_per_s": options.steps / best, "ms_per_step": 1000 * best / options.steps,
          "compile_s": compile_s, "first_block_s": t["first_call_s"],
          "spread_ms_per_step": [t["min_ms"] / options.steps, t["max_ms"] / options.steps],
          **timing.roofline(timing.xla_cost(step), 1e3 * best / options.steps, matmul,
                           devices=runner.num_devices if mode == "shard_map" else 1),
          "params": n_params,
          "d_loss": runner.get_metrics(m)["d_loss"], "devices": runner.num_devices}


def bench_torch(options: Options) -> dict:
  """The PyTorch twin in every variant of the grid (``timing.TorchGrid``); the fastest is the reference.

  ``torch.compile`` compiles the generator and the discriminator modules (the
  optimiser steps stay eager).
  """
  import torch  # pylint: disable=g-import-not-at-top

  from peers import cgan as peer_cgan  # pylint: disable=g-import-not-at-top

  cfg = options.config
  grid = timing.TorchGrid(options, options.warmup, options.repeats)
  x, y = _batch(cfg)
  last = {}

  def build(v: timing.Variant):
    torch.manual_seed(cfg.seed)
    gen, disc = peer_cgan.make_models(cfg)
    last["params"] = peer_cgan.num_params(gen, disc)
    trainer = peer_cgan.CGANStep(gen, disc, x, y, z_dim=cfg.z_dim, loss=cfg.loss,
                                 g_lr=cfg.learning_rate, d_lr=_d_learning_rate(cfg), b1=cfg.adam_b1,
                                 channels_last=v.channels_last)
    trainer.gen, trainer.disc = grid.compile(trainer.gen, v), grid.compile(trainer.disc, v)

    def block():
      for _ in range(options.steps):
        last["d_loss"] = trainer.step()
      float(last["d_loss"].detach())

    return block

  out = grid.run(build, "steps_per_s", per_call=options.steps)
  for v in out["variants"].values():
    v["ms_per_step"] = v["median_ms"] / options.steps
  best = out["variants"][out["best"]] if out["best"] else {}
  return {"steps_per_s": out["steps_per_s"], "ms_per_step": best.get("ms_per_step"),
          "setup": out["best"], "setups": out["variants"], "compile_error": out["compile_error"],
          "params": last.get("params"), "d_loss": float(last["d_loss"].detach()) if last else None}


@register("cgan", help="cGAN train steps/s, jaxstyle vs PyTorch", options=Options,
          define_flags=define_flags, options_from_flags=options_from_flags,
          config_dict=config_dict, default_options=default_options)
def run(options: Options) -> dict:
  """Runs both frameworks; see the module docstring."""
  result = {"jax": bench_jax(options)}
  torch_ok = False
  if not options.no_torch:
    try:
      import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      torch_ok = True
    except ImportError:
      result["torch"] = "not installed"
  if torch_ok:
    result["torch"] = bench_torch(options)
    result["jax_over_torch"] = result["jax"]["steps_per_s"] / result["torch"]["steps_per_s"]
    if result["jax"]["params"] != result["torch"]["params"]:
      result["warning"] = "parameter counts differ between the two implementations"
  return result
