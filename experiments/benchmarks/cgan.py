"""cGAN train steps/s: jaxstyle vs an in-house PyTorch equivalent, in one run.

  python experiments/benchmark.py cgan [--batch_size 64 --g_width 32 --d_width 32 --steps 30]
  python experiments/benchmark.py cgan --g_head_width 16 --loss hinge   # the shipped configs' model

The model and optimiser flags are ``experiments/configs/cgan.py``'s ``Config``
fields (the architecture, ``--loss``, ``--learning_rate``,
``--d_learning_rate``, ``--adam_b1``, ``--batch_size``, ``--seed``,
``--cpu_devices``), with the benchmark's own defaults for the widths (32) and
``--cpu_devices`` (2); the training-loop settings (schedules, EMA, checkpoints,
evaluation) do not apply. ``--steps``, ``--warmup``, ``--repeats``,
``--torch_threads`` and ``--no_torch`` are the benchmark's own.

jaxstyle runs in two setups, one device (``jit``) and, when there are several
devices (``--cpu_devices`` on a CPU), the batch split over all of them with
shard_map (what train_cgan.py does); PyTorch runs with each of
``--torch_threads``. The ratio compares the fastest setup of each, so neither
side is handicapped by a threading choice. jaxstyle's step is compiled first
(``compile_s``); ``first_step_s`` is the first call after that.

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
from benchmarks.registry import each_at_least, register
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
class Options:
  """The benchmark's own flags; ``config`` is the cGAN ``Config`` (model and optimiser flags)."""
  steps: int = cfglib.setting(30, "Timed steps per framework and repeat.", ge=1)
  warmup: int = cfglib.setting(3, "Untimed steps before the timed ones (the first, after "
                               "compilation, is reported as first_step_s).", ge=1)
  repeats: int = cfglib.setting(3, "Timed blocks per framework (best is kept).", ge=1)
  torch_threads: tuple[int, ...] = cfglib.setting((1, 2), "Comma-separated torch thread counts to "
                                                  "time.", check=each_at_least(1, "thread count"))
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
  if options.config.cpu_devices:
    jax.config.update("jax_num_cpu_devices", options.config.cpu_devices)  # before the backend starts
  setups = {"jit": _bench_jax_setup(options, "jit")}
  if jax.device_count() > 1:
    setups[f"shard_map_{jax.device_count()}dev"] = _bench_jax_setup(options, "shard_map")
  return _best(setups)


def _bench_jax_setup(options: Options, mode: str) -> dict:
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
  t0 = time.perf_counter()
  state, m = step(state, batch)
  jax.block_until_ready(m)
  first_s = time.perf_counter() - t0
  for _ in range(options.warmup - 1):
    state, m = step(state, batch)
  jax.block_until_ready(m)
  best = float("inf")
  for _ in range(options.repeats):
    t0 = time.perf_counter()
    for _ in range(options.steps):
      state, m = step(state, batch)
    jax.block_until_ready(m)
    best = min(best, time.perf_counter() - t0)
  n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(runner.get_state(state).params))
  return {"steps_per_s": options.steps / best, "ms_per_step": 1000 * best / options.steps,
          "compile_s": compile_s, "first_step_s": first_s, "params": n_params,
          "d_loss": runner.get_metrics(m)["d_loss"], "devices": runner.num_devices}


def bench_torch(options: Options) -> dict:
  """Times the PyTorch twin with each of ``--torch_threads``; the fastest is the reference."""
  import torch  # pylint: disable=g-import-not-at-top
  setups = {}
  for n in options.torch_threads:
    torch.set_num_threads(n)
    setups[f"{n}_threads"] = _bench_torch_setup(options)
  return _best(setups)


def _bench_torch_setup(options: Options) -> dict:
  import torch  # pylint: disable=g-import-not-at-top

  from peers import cgan as peer_cgan  # pylint: disable=g-import-not-at-top

  cfg = options.config
  torch.manual_seed(cfg.seed)
  gen, disc = peer_cgan.make_models(cfg)
  x, y = _batch(cfg)
  trainer = peer_cgan.CGANStep(gen, disc, x, y, z_dim=cfg.z_dim, loss=cfg.loss,
                               g_lr=cfg.learning_rate, d_lr=_d_learning_rate(cfg), b1=cfg.adam_b1)
  t0 = time.perf_counter()
  trainer.step()
  first_s = time.perf_counter() - t0
  for _ in range(options.warmup - 1):
    trainer.step()
  best = float("inf")
  for _ in range(options.repeats):
    t0 = time.perf_counter()
    for _ in range(options.steps):
      d_loss = trainer.step()
    best = min(best, time.perf_counter() - t0)
  return {"steps_per_s": options.steps / best, "ms_per_step": 1000 * best / options.steps,
          "first_step_s": first_s, "params": peer_cgan.num_params(gen, disc),
          "d_loss": float(d_loss.detach()), "threads": torch.get_num_threads()}


@register("cgan", help="cGAN train steps/s, jaxstyle vs PyTorch", options=Options,
          define_flags=define_flags, options_from_flags=options_from_flags,
          config_dict=config_dict)
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
