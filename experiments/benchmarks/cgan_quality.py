"""cGAN quality and time to quality: jaxstyle vs its PyTorch twin, same recipe, data and seeds.

  python experiments/benchmark.py cgan_quality [--steps 10000 --eval_every 1000 --eval_samples 5000]

Measured: each side trains the cGAN of the ``Config`` (default: the quick
recipe, ``get_config("quick")`` = cgan_mnist_quick.flags; its model and
optimiser fields are flags) for ``--steps`` steps on MNIST. Every
``--eval_every`` steps and at the end, one ``metrics.Evaluator`` (the oracle,
the 10,000 test images) scores the sampling generator (the EMA one when
``--ema_decay`` > 0, as train_cgan.py) on ``--eval_samples`` balanced labels,
both sides with the same noise (train_cgan.py's eval keys): oracle accuracy,
FID, ``fid_ratio`` = FID / floor (``fid_floor``: as many seeded train images
vs the test set), the oracle's inception score, diversity. ``train_wall_s``
at each point of a side's ``curve``: wall time of the training steps so far,
batches included, evaluation excluded; the first step is apart
(``first_step_s``: it holds torch.compile's compilation), as is jaxstyle's
ahead-of-time ``compile_s``. Time to quality: ``train_wall_s`` (and step) of
the first evaluation with oracle accuracy >= ``--target_accuracy`` and with
``fid_ratio`` <= ``--target_fid_ratio`` (None: not reached); the
``*_jax_over_torch`` ratios of those times (< 1: jaxstyle sooner) and of
steps/s (> 1: jaxstyle faster).

jaxstyle: ``train.make_cgan_step`` under ``parallel.DataParallel(--parallel)``
on ``--cpu_devices`` CPU devices, one step in flight (batch k is made while
step k-1 runs: a deeper queue of 2-device steps once stalled XLA:CPU's
all-reduce past its 40 s rendezvous timeout on a loaded 2-core machine).
PyTorch: ``peers.cgan`` (``make_models``, ``CGANStep``) in the fastest
``timing.TorchGrid`` variant (each trains fresh nets for 3 blocks of
``--probe_steps`` steps, the first apart), then trained from the start.

Same recipe on both sides: the same batches in the same order (one seeded
``data.BatchIterator``, the same NumPy arrays), GAN loss, D-then-G update,
Adam (learning rates, beta1, beta2 0.999, eps 1e-8), linear learning-rate
decay and generator EMA (both added here to the twin's loop; ``CGANStep`` has
neither), GroupNorm epsilon (the twin's set to Flax's 1e-6) and, with
``--torch_init=jaxstyle`` (default), the initial weights: jaxstyle's, copied
into the twin (``load_jax_params``; ``torch``: PyTorch's initialisers).
Different: the training noise z (torch's generator seeded with ``--seed`` vs
jaxstyle's step keys: same N(0, 1), other draws) and float rounding (kernels;
jaxstyle's batch split over devices), so the runs part after a few steps and
the curves agree statistically. Fixed seeds: each side's quality numbers
repeat exactly on one machine (PyTorch's given its variant, which is recorded:
mode, layout and threads change rounding).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from typing import Any, Callable

import numpy as np

import cli
from benchmarks import timing
from benchmarks.registry import register
from jaxstyle import config as cfglib

_MNIST = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                       "shared", "data", "mnist"))
# Config fields the benchmark uses besides the architecture (jaxstyle.nets.cgan.CGANConfig).
_TRAIN_FIELDS = ("seed", "batch_size", "loss", "learning_rate", "d_learning_rate", "lr_decay_begin",
                 "lr_decay_end", "adam_b1", "ema_decay", "parallel", "cpu_devices", "mnist_dir",
                 "oracle")
# Architecture fields the PyTorch twin does not vary (MNIST shape, float32).
_FIXED_MODEL_FIELDS = ("image_size", "channels", "dtype")
QUALITY_KEYS = ("oracle_accuracy", "oracle_accuracy_min_class", "fid", "fid_ratio",
                "inception_score", "diversity", "diversity_min", "diversity_pixel")
FLAX_GROUPNORM_EPS = 1e-6
TORCH_INITS = ("jaxstyle", "torch")


def _configs():
  from configs import cgan as cgan_configs  # pylint: disable=g-import-not-at-top
  return cgan_configs


def used_fields() -> tuple[str, ...]:
  """The ``Config`` fields this benchmark reads (all others keep their defaults, unused)."""
  from jaxstyle.nets import cgan  # pylint: disable=g-import-not-at-top
  model = [f.name for f in dataclasses.fields(cgan.CGANConfig) if f.name not in _FIXED_MODEL_FIELDS]
  return tuple(model) + _TRAIN_FIELDS


def config_defaults() -> dict[str, Any]:
  """The benchmark's ``Config`` defaults: the quick recipe's used fields, ../shared/data MNIST."""
  quick = _configs().get_config("quick")
  return {**{k: getattr(quick, k) for k in used_fields()}, "mnist_dir": _MNIST}


@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The benchmark's own flags (and the PyTorch grid's); ``config`` is the cGAN ``Config``."""
  steps: int = cfglib.setting(10000, "Train steps per side (the quick recipe's num_steps).", ge=1)
  eval_every: int = cfglib.setting(1000, "Evaluate every this many steps and at the end.", ge=1)
  eval_samples: int = cfglib.setting(5000, "Generated images per evaluation (balanced labels) "
                                     "and train images of the FID floor.", ge=20)
  target_accuracy: float = cfglib.setting(0.95, "Oracle accuracy of the time-to-quality target.",
                                          gt=0, le=1)
  target_fid_ratio: float = cfglib.setting(3.0, "FID / floor of the time-to-quality target.", gt=0)
  probe_steps: int = cfglib.setting(20, "Steps per block when timing each PyTorch variant (3 "
                                    "blocks, the first apart) to pick the fastest.", ge=1)
  torch_init: str = cfglib.setting("jaxstyle", "Initial weights of the twin: jaxstyle's initial "
                                   "parameters (the same start) or PyTorch's initialisers.",
                                   choices=TORCH_INITS)
  no_torch: bool = cfglib.setting(False, "Skip PyTorch.")
  config: Any = None  # configs/cgan.py Config (not a flag itself; its used fields are)


def define_flags() -> None:
  cli.define_config_flags(Options)
  config_cls = _configs().Config
  used = set(used_fields())
  unused = [s.name for s in cfglib.settings(config_cls) if s.name not in used]
  cli.define_config_flags(config_cls, defaults=config_defaults(), exclude=unused)


def options_from_flags() -> Options:
  return cli.config_from_flags(Options, config=cli.config_from_flags(_configs().Config))


def default_options() -> Options:
  """The options without flags: the benchmark's defaults and the quick recipe."""
  return Options(config=cfglib.validate(_configs().Config(**config_defaults())))


def config_dict(options: Options) -> dict:
  """The record's config: the benchmark's options and the ``Config`` fields it uses."""
  out = cfglib.to_dict(options)
  used = set(used_fields())
  out["config"] = {k: v for k, v in out["config"].items() if k in used}
  return out


# ----------------------------------------------------------------------------- shared parts


class _Shared:
  """Data, evaluator and FID floor, built once and used by both sides."""

  def __init__(self, options: Options):
    import jax  # pylint: disable=g-import-not-at-top

    from jaxstyle import data, metrics  # pylint: disable=g-import-not-at-top
    from jaxstyle.nets import classifier  # pylint: disable=g-import-not-at-top

    cfg = self.cfg = options.config
    self.options = options
    images, labels = data.load_mnist("train", cfg.mnist_dir)
    self.iterator = data.BatchIterator({"image": images, "label": labels}, cfg.batch_size,
                                       seed=cfg.seed)
    test_images, test_labels = data.load_mnist("test", cfg.mnist_dir)
    self.evaluator = metrics.Evaluator(classifier.load_oracle(cfg.oracle),
                                       data.to_float_nhwc(test_images), test_labels,
                                       num_samples=options.eval_samples,
                                       sample_batch_size=min(500, options.eval_samples))
    floor_idx = np.random.default_rng(cfg.seed).permutation(len(images))[:options.eval_samples]
    self.fid_floor = self.evaluator.fid_floor(data.to_float_nhwc(images[floor_idx]))
    self.eval_root = jax.random.fold_in(jax.random.key(cfg.seed), 3)  # train_cgan.py's eval keys
    self._to_float = data.to_float_nhwc

  def batch(self, step: int) -> dict:
    b = self.iterator.batch(step)
    return {"image": self._to_float(b["image"]), "label": b["label"]}

  def evaluate(self, sample_fn: Callable, step: int) -> dict:
    import jax  # pylint: disable=g-import-not-at-top
    out = self.evaluator(sample_fn, jax.random.fold_in(self.eval_root, step))
    out["fid_ratio"] = out["fid"] / self.fid_floor
    return {k: out[k] for k in QUALITY_KEYS if k in out}

  def eval_steps(self) -> list[int]:
    o = self.options
    return sorted(set(range(o.eval_every, o.steps + 1, o.eval_every)) | {o.steps})


def train_curve(shared: _Shared, step: Callable[[int], Any], sync: Callable[[Any], None],
                sampler: Callable[[], Callable], desc: str = "train") -> dict:
  """Runs ``step(0..steps-1)``, evaluating ``sampler()`` at the eval steps; the curve and summary.

  ``step(k)`` trains on batch k and returns what ``sync`` waits for. A progress
  bar (stderr) moves at each evaluation, outside the timed spans.
  """
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  o = shared.options
  t0 = time.perf_counter()
  sync(step(0))
  first_step_s = time.perf_counter() - t0
  wall = eval_s = 0.0
  curve, k = [], 1
  bar = tqdm(total=o.steps, desc=f"cgan_quality {desc}", unit="step", dynamic_ncols=True)
  for stop in shared.eval_steps():
    t0 = time.perf_counter()
    handle = None
    while k < stop:
      handle = step(k)
      k += 1
    if handle is not None:
      sync(handle)
    wall += time.perf_counter() - t0
    t0 = time.perf_counter()
    curve.append({"step": stop, "train_wall_s": wall, **shared.evaluate(sampler(), stop)})
    eval_s += time.perf_counter() - t0
    bar.update(stop - bar.n)
    bar.set_postfix(accuracy=f"{curve[-1]['oracle_accuracy']:.3f}",
                    fid_ratio=f"{curve[-1]['fid_ratio']:.2f}")
  bar.close()
  out = {"first_step_s": first_step_s, "train_wall_s": wall, "eval_s": eval_s,
         "steps_per_s": (o.steps - 1) / wall if wall > 0 else None}
  for name, ok in (("accuracy", lambda p: p["oracle_accuracy"] >= o.target_accuracy),
                   ("fid", lambda p: p["fid_ratio"] <= o.target_fid_ratio)):
    hit = next((p for p in curve if ok(p)), None)  # the first evaluation on target
    out[f"step_to_{name}"] = hit and hit["step"]
    out[f"time_to_{name}_s"] = hit and hit["train_wall_s"]
  return {**out, "final": {k: v for k, v in curve[-1].items() if k != "train_wall_s"},
          "curve": curve}


# ----------------------------------------------------------------------------- jaxstyle


def _initial_state(cfg) -> Any:
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import train  # pylint: disable=g-import-not-at-top
  g_tx, d_tx = _configs().optimizers(cfg)
  return jax.tree.map(np.asarray, train.init_cgan_state(
      _configs().model_config(cfg), cfg.seed, g_tx, d_tx, g_ema=cfg.ema_decay > 0))


def run_jax(shared: _Shared, host: Any) -> dict:
  """jaxstyle's step under ``DataParallel`` from the host state ``host``; evaluated as it trains."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import parallel, train  # pylint: disable=g-import-not-at-top

  cfg = shared.cfg
  model = _configs().model_config(cfg)
  g_tx, d_tx = _configs().optimizers(cfg)
  runner = parallel.DataParallel(cfg.parallel)
  runner.check_batch_size(cfg.batch_size)
  box = {"state": runner.put_state(host)}
  t0 = time.perf_counter()
  step_fn = runner.compile(train.make_cgan_step(model, g_tx, d_tx, cfg.loss,
                                                ema_decay=cfg.ema_decay))
  step_fn = step_fn.lower(box["state"], runner.put_batch(shared.batch(0))).compile()
  compile_s = time.perf_counter() - t0
  sample = train.make_cgan_sampler(model)

  def step(k):  # one step in flight: batch k is made while step k-1 runs (see the docstring)
    batch = runner.put_batch(shared.batch(k))
    jax.block_until_ready(box.get("metrics"))
    box["state"], box["metrics"] = step_fn(box["state"], batch)
    return box["metrics"]

  def sampler():
    state = box["state"]
    g = runner.get_state(state.ema["g"] if cfg.ema_decay > 0 else state.params["g"])
    return lambda key, y: sample(g, jax.random.normal(key, (y.shape[0], model.z_dim)), y)

  out = train_curve(shared, step, jax.block_until_ready, sampler, "jaxstyle")
  n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(host.params))
  setup = "jit" if cfg.parallel == "jit" else f"{cfg.parallel}_{runner.num_devices}dev"
  return {"setup": setup, "devices": runner.num_devices, "compile_s": compile_s,
          "params": n_params, **out}


# ----------------------------------------------------------------------------- PyTorch twin


def load_jax_params(gen, disc, params: dict) -> None:
  """Copies jaxstyle's cGAN parameters ``{"g": ..., "d": ...}`` into the twin ``gen``, ``disc``.

  Kernels HWIO -> OIHW, dense (in, out) -> (out, in); a sub-pixel conv's output
  channel k*C + c (jaxstyle's depth_to_space, k = 2i + j) is PixelShuffle's
  c*4 + k; NHWC reshape/flatten position p*C + c is NCHW's c*S*S + p.
  """
  import torch  # pylint: disable=g-import-not-at-top

  def shuffle(c):
    return np.array([k * c + ch for ch in range(c) for k in range(4)])

  def nchw(c, hw):
    return np.array([p * c + ch for ch in range(c) for p in range(hw)])

  def put(tensor, value):
    tensor.copy_(torch.from_numpy(np.array(value, np.float32)))  # a writable copy

  def layer(mod, p, out_perm=None, in_perm=None):  # conv (HWIO kernel) or dense ((in, out))
    k, b = np.asarray(p["kernel"]), np.asarray(p["bias"])
    if out_perm is not None:
      k, b = k[..., out_perm], b[out_perm]
    if in_perm is not None:
      k = k[in_perm]
    put(mod.weight, k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T)
    put(mod.bias, b)

  g, d = params["g"], params["d"]
  w, hw = gen.width, gen.head_width
  with torch.no_grad():
    put(gen.embed.weight, g["label_embed"]["embedding"])
    layer(gen.fc, g["fc"], out_perm=nchw(2 * w, 49))
    layer(gen.up1, g["up1"], shuffle(w))
    layer(gen.up2, g["up2"], shuffle(max(hw, 1)))
    if hw:
      layer(gen.head, g["head"])
    for name in ("norm0", "norm1", "norm2"):
      if name in g:
        put(getattr(gen, name).weight, g[name]["scale"])
        put(getattr(gen, name).bias, g[name]["bias"])
    layer(disc.conv1, d["conv1"])
    layer(disc.conv2, d["conv2"])
    layer(disc.fc, d["fc"], in_perm=nchw(disc.conv2.out_channels, 49))
    layer(disc.out, d["out"])
    put(disc.embed.weight, d["label_embed"]["embedding"])


def make_twin(cfg, host_params: dict | None):
  """The twin's (gen, disc), GroupNorm eps as Flax's, with jaxstyle's ``host_params`` if given."""
  import torch  # pylint: disable=g-import-not-at-top

  from peers import cgan as peer_cgan  # pylint: disable=g-import-not-at-top
  torch.manual_seed(cfg.seed)
  gen, disc = peer_cgan.make_models(cfg)
  for m in gen.modules():
    if isinstance(m, torch.nn.GroupNorm):
      m.eps = FLAX_GROUPNORM_EPS
  if host_params is not None:
    load_jax_params(gen, disc, host_params)
  return gen, disc


class TorchRun:
  """The twin in one ``timing.Variant``, trained with the recipe's EMA and learning-rate decay."""

  def __init__(self, shared: _Shared, host_params: dict | None, variant: timing.Variant,
               grid: timing.TorchGrid):
    import torch  # pylint: disable=g-import-not-at-top

    from peers import cgan as peer_cgan  # pylint: disable=g-import-not-at-top
    cfg = self.cfg = shared.cfg
    self.torch, self.shared = torch, shared
    gen, disc = make_twin(cfg, host_params)
    self.params = peer_cgan.num_params(gen, disc)
    self.fmt = grid.fmt(variant)
    self.d_lr = cfg.learning_rate if cfg.d_learning_rate is None else cfg.d_learning_rate
    b = shared.batch(0)
    self.trainer = peer_cgan.CGANStep(gen, disc, b["image"], b["label"], z_dim=cfg.z_dim,
                                      loss=cfg.loss, g_lr=cfg.learning_rate, d_lr=self.d_lr,
                                      b1=cfg.adam_b1, channels_last=variant.channels_last)
    self.gen = gen  # the eager module (the compiled one shares its parameters)
    self.ema = None
    if cfg.ema_decay > 0:
      self.ema = copy.deepcopy(gen).requires_grad_(False)
      self.ema_p, self.gen_p = list(self.ema.parameters()), list(gen.parameters())
    self.trainer.gen, self.trainer.disc = grid.compile(gen, variant), grid.compile(disc, variant)

  def _lr(self, base: float, k: int) -> float:
    """optax.linear_schedule as configs.cgan.optimizers builds it, at update ``k``."""
    begin, end = self.cfg.lr_decay_begin, self.cfg.lr_decay_end
    return base * (1.0 - min(max(k - begin, 0) / (end - begin), 1.0))

  def step(self, k: int):
    torch, t, b = self.torch, self.trainer, self.shared.batch(k)
    t.x = torch.from_numpy(b["image"]).permute(0, 3, 1, 2).contiguous(memory_format=self.fmt)
    t.y = torch.from_numpy(b["label"]).long()
    t.yy = torch.cat([t.y, t.y])
    if self.cfg.lr_decay_end:
      for opt, base in ((t.opt_g, self.cfg.learning_rate), (t.opt_d, self.d_lr)):
        for group in opt.param_groups:
          group["lr"] = self._lr(base, k)
    loss = t.step()
    if self.ema is not None:
      decay = self.cfg.ema_decay
      with torch.no_grad():
        torch._foreach_mul_(self.ema_p, decay)  # decay * ema + (1 - decay) * params, as jaxstyle
        torch._foreach_add_(self.ema_p, self.gen_p, alpha=1.0 - decay)
    return loss

  def sample_fn(self) -> Callable:
    """``sample_fn(key, labels)`` of the Evaluator: jaxstyle's noise from ``key``, NHWC float32."""
    import jax  # pylint: disable=g-import-not-at-top
    torch, net = self.torch, self.ema if self.ema is not None else self.gen

    def sample(key, labels):
      z = np.array(jax.random.normal(key, (labels.shape[0], self.cfg.z_dim)))  # writable copies
      with torch.no_grad():
        out = net(torch.from_numpy(z), torch.from_numpy(np.array(labels)).long())
      return out.permute(0, 2, 3, 1).contiguous().numpy()

    return sample


def run_torch(shared: _Shared, host_params: dict | None) -> dict:
  """Probes every grid variant, then trains and evaluates the twin in the fastest."""
  import torch  # pylint: disable=g-import-not-at-top

  options = shared.options
  grid = timing.TorchGrid(options, warmup=1, repeats=2)

  def build(v: timing.Variant):
    run, box = TorchRun(shared, host_params, v, grid), {"k": 0}

    def block():
      for _ in range(options.probe_steps):
        loss = run.step(box["k"])
        box["k"] += 1
      float(loss.detach())

    return block

  probe = grid.run(build, "steps_per_s", per_call=options.probe_steps)
  for v in probe["variants"].values():
    v["ms_per_step"] = v["median_ms"] / options.probe_steps
  best = probe["variants"][probe["best"]]
  variant = timing.Variant(best["mode"], best["layout"], best["threads"])
  default_threads = torch.get_num_threads()
  torch.set_num_threads(variant.threads)
  torch._dynamo.reset()
  try:
    run = TorchRun(shared, host_params, variant, grid)
    out = train_curve(shared, run.step, lambda loss: float(loss.detach()), run.sample_fn,
                      "PyTorch")
  finally:
    torch._dynamo.reset()
    torch.set_num_threads(default_threads)
  return {"setup": variant.name, "params": run.params, **out,
          "probe": {"best": probe["best"], "variants": probe["variants"],
                    "compile_error": probe["compile_error"]}}


# ----------------------------------------------------------------------------- the benchmark


def _start_devices(cpu_devices: int) -> str | None:
  """Splits the CPU into ``cpu_devices`` JAX devices; a note if JAX had already started."""
  import jax  # pylint: disable=g-import-not-at-top

  from jaxstyle import parallel  # pylint: disable=g-import-not-at-top
  parallel.request_cpu_devices(cpu_devices)
  have = len(jax.devices("cpu"))
  if cpu_devices and have != cpu_devices:
    return (f"--cpu_devices={cpu_devices} not applied: JAX had already started in this process "
            f"with {have} CPU devices")
  return None


@register("cgan_quality", help="cGAN quality curves and time to quality, jaxstyle vs PyTorch",
          options=Options, define_flags=define_flags, options_from_flags=options_from_flags,
          config_dict=config_dict, default_options=default_options)
def run(options: Options) -> dict:
  """Trains and evaluates both sides; see the module docstring."""
  note = _start_devices(options.config.cpu_devices)
  shared = _Shared(options)
  result: dict[str, Any] = {
      "fid_floor": shared.fid_floor, "eval_samples": options.eval_samples,
      "eval_steps": shared.eval_steps(),
      "targets": {"oracle_accuracy": options.target_accuracy,
                  "fid_ratio": options.target_fid_ratio}}
  if note:
    result["note"] = note
  host = _initial_state(options.config)  # train_cgan.py's initial state (eager, as it does)
  result["jax"] = run_jax(shared, host)
  if options.no_torch:
    return result
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    result["torch"] = "not installed"
    return result
  result["torch"] = t = run_torch(shared, host.params if options.torch_init == "jaxstyle" else None)
  j = result["jax"]
  for name in ("time_to_accuracy_s", "time_to_fid_s", "steps_per_s"):
    result[f"{name}_jax_over_torch"] = timing.ratio(j[name], t[name])
  if j["params"] != t["params"]:
    result["warning"] = "parameter counts differ between the two implementations"
  return result
