"""Stylization network speed: jaxstyle's generator vs its PyTorch twin and TransformerNet, in one run.

  python experiments/benchmark.py stylizer [--sizes 256,512,1024] [--batches 1,4] [--repeats 3]
      [--checkpoint RUN | --widths 32,64,128 --stem_kernel 9 --residual_blocks 5 ...]
      [--torch_modes eager,compile] [--layouts nchw,channels_last] [--torch_threads 1,0]
      [--train_crop 256 --train_batch 4] [--memory_size 1024] [--nofast_cpu_convs] [--out r.json]

What is measured (inputs seeded uniform images, seeded random weights: the
timings do not depend on their values):

* Inference, at every ``--sizes`` x ``--batches``: jaxstyle's generator
  (``jaxstyle.nets.stylizer``, jitted; ``compile_s`` apart), its PyTorch twin
  (``peers.stylizer.TorchStylizer``, loaded with the same parameters) and
  Johnson et al.'s ``TransformerNet`` (``peers.stylizer``). The architecture
  comes from the flags, or from ``--checkpoint``'s ``config.json`` (key
  ``"model"``, the generator's settings or a train config with a
  ``"generator"`` entry; then the architecture flags are ignored). Each
  PyTorch net runs in every variant ``{mode}_{layout}_{threads}t`` of
  ``--torch_modes`` (eager, ``torch.compile``), ``--layouts`` and
  ``--torch_threads`` (0: all cores), under ``torch.inference_mode``; the
  fastest variant per size and batch is its ``best``. If ``torch.compile``
  fails, the reason is recorded (``torch_compile_error``) and eager stays.
  ``--torch_device`` (default auto: cuda when torch sees a GPU; recorded as
  ``torch_device``) puts the PyTorch side on the GPU (``timing.TorchGrid``:
  synchronised calls, TF32 allowed, one thread count). With ``--dtype
  bfloat16`` jaxstyle's generator computes in bfloat16 and the PyTorch nets
  run under ``torch.autocast`` to bfloat16 (VGG and losses stay float32 on
  both sides when training).
* Per measurement: ``first_call_s`` (for ``torch.compile`` that call compiles:
  ``compile_s``, shorter when Inductor's on-disk cache already holds the
  graph), ``--warmup - 1`` further untimed calls, then the median of
  ``--repeats`` timed calls: ``median_ms`` and ``img_per_s``.
  ``jaxstyle_over_transformer_net`` / ``jaxstyle_over_twin``: jaxstyle's
  images/s over the best variant's.
* Training (``--train_crop``, ``--train_batch``): jaxstyle's
  ``make_stylizer_step`` with a style bank of two styles, ``d_steps=0`` and
  the identity term (one generator forward on ``[content; content]``, VGG on
  content and output; random VGG weights to conv3_4, the default layers),
  jitted, against ``peers.stylizer.StylizerTrainStep`` doing the same work in
  every PyTorch variant; ``steps_per_s`` from the median step.
* Peak memory (``--memory_size``, 0 skips; ``--memory_batches``): each
  implementation's inference in a fresh subprocess (jaxstyle jitted, PyTorch
  eager in the best layout at the largest measured size, default threads):
  ``peak_mib`` is the process's peak resident set (``VmHWM``; ``ru_maxrss``
  where there is no ``/proc``), ``before_run_mib`` the same after imports
  and setup, before the first call; on a GPU also ``device_peak_mib``, the
  device allocator's peak (JAX ``memory_stats()["peak_bytes_in_use"]``,
  ``torch.cuda.max_memory_allocated()``).
* ``--fast_cpu_convs`` (default on) applies ``jaxstyle.cpu_tuning``'s XLA flag
  before JAX starts; ``fast_cpu_convs_applied`` says whether it took effect
  (it cannot once JAX's backend is running in this process). The record's
  ``meta.xla_flags`` has the flags in force.

jaxstyle's rows also carry XLA's FLOP and byte counts of the compiled
program and the rate they imply against the measured f32 matmul rate
(``benchmarks.timing.roofline``: ``xla_gflop``, ``achieved_gflops``,
``vs_matmul``; ``matmul_f32``).

Results (units in key names): ``architecture``, ``params`` (per
implementation), ``twin_max_abs_diff`` (twin vs jaxstyle output at the first
size and batch), ``inference`` (one row per size and batch), ``train``,
``peak_memory``, ``torch_compile_error`` (None when it worked). The PyTorch
parts are skipped with ``--no_torch``, and without torch (then ``"torch":
"not installed"``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks import timing
from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

_EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The generator settings the flags carry (defaults: jaxstyle.nets.stylizer.StylizerConfig's).
ARCH_FIELDS = ("widths", "stem_kernel", "residual_blocks", "latent_dim", "upsample", "output", "dtype")


@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The flags of ``benchmark.py stylizer`` (and the PyTorch grid's)."""
  sizes: tuple[int, ...] = cfglib.setting((256, 512, 1024), "Square image sizes, comma-separated.",
                                          check=each_at_least(8))
  batches: tuple[int, ...] = cfglib.setting((1, 4), "Batch sizes, comma-separated.",
                                            check=each_at_least(1, "batch size"))
  repeats: int = cfglib.setting(3, "Timed calls per measurement (the median is reported).", ge=1)
  warmup: int = cfglib.setting(1, "Untimed calls before the timed ones (the first is reported as "
                               "first_call_s).", ge=1)
  checkpoint: str | None = cfglib.setting(None, "Trained run directory: the architecture from its "
                                          "config.json (the architecture flags are then ignored).")
  widths: tuple[int, ...] = cfglib.setting((32, 64, 128), "Generator encoder widths.",
                                           check=each_at_least(1, "width"))
  stem_kernel: int = cfglib.setting(9, "Generator first/last conv kernel (odd).", gt=0)
  residual_blocks: int = cfglib.setting(5, "Generator residual blocks.", ge=0)
  latent_dim: int = cfglib.setting(64, "Generator style latent size.", gt=0)
  upsample: str = cfglib.setting("nearest", "Generator decoder upsampling.",
                                 choices=("nearest", "bilinear"))
  output: str = cfglib.setting("sigmoid", "Generator output activation.", choices=("sigmoid", "tanh"))
  dtype: str = cfglib.setting("float32", "jaxstyle's compute dtype; with bfloat16 the PyTorch nets "
                              "run under torch.autocast to bfloat16.",
                              choices=("float32", "bfloat16"))
  torch_device: str = timing.torch_device_setting()
  fast_cpu_convs: bool = cfglib.setting(True, "Apply jaxstyle.cpu_tuning's fast-convolution XLA "
                                        "flag before JAX starts.")
  train_crop: int = cfglib.setting(256, "Training crop size.", ge=8)
  train_batch: int = cfglib.setting(4, "Training batch size.", ge=1)
  no_train: bool = cfglib.setting(False, "Skip the training steps.")
  memory_size: int = cfglib.setting(1024, "Image size of the peak-memory subprocesses (0: skip).",
                                    ge=0)
  memory_batches: tuple[int, ...] = cfglib.setting((1, 4), "Batch sizes of the peak-memory runs.",
                                                   check=each_at_least(1, "batch size"))
  no_torch: bool = cfglib.setting(False, "Skip PyTorch.")
  seed: int = cfglib.setting(0, "Seed of weights and inputs.")


def generator_config(options: Options):
  """The ``StylizerConfig`` to time: from ``--checkpoint``'s config.json, else from the flags."""
  from jaxstyle.nets import stylizer as st  # pylint: disable=g-import-not-at-top
  if options.checkpoint is None:
    return cfglib.validate(st.StylizerConfig(**{k: getattr(options, k) for k in ARCH_FIELDS}))
  path = os.path.join(options.checkpoint, "config.json")
  try:
    with open(path, encoding="utf-8") as f:
      model = json.load(f)["model"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise cfglib.invalid("checkpoint", options.checkpoint, f"has no readable config.json with a "
                         f"\"model\" entry ({e}); pass a stylizer run directory") from None
  model = model.get("generator", model)
  return cfglib.validate(cfglib.from_dict(st.StylizerConfig, model, ignore_unknown=True))


def random_generator_params(config, seed: int) -> dict:
  """Generator params of ``config``'s tree, every leaf seeded NumPy noise (StyleMods included).

  Shapes from ``init_stylizer`` under ``jax.eval_shape`` (no init compile);
  kernels ``N(0, 1/fan_in)``, biases ``N(0, 0.1²)``, StyleMod kernels ``N(0, 0.3²)``.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import stylizer as st  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda k: st.init_stylizer(config, k), jax.random.key(0))

  def draw(path, leaf):
    names = [getattr(p, "key", "") for p in path]
    if names[-1] == "bias":
      scale = 0.1
    elif "mod" in names:
      scale = 0.3
    else:
      scale = 1.0 / np.sqrt(np.prod(leaf.shape[:-1]))
    return (scale * rng.standard_normal(leaf.shape)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _images(seed: int, batch: int, size: int):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.random.default_rng([seed, batch, size]).random((batch, size, size, 3), dtype=np.float32)


def _latent(seed: int, batch: int, dim: int):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return np.random.default_rng([seed, batch, dim]).standard_normal((batch, dim)).astype(np.float32)


class _Torch:
  """PyTorch side: both nets in every variant of the grid (``timing.TorchGrid``)."""

  def __init__(self, options: Options, gcfg, g_params):
    import torch  # pylint: disable=g-import-not-at-top
    from peers import stylizer as peer  # pylint: disable=g-import-not-at-top
    self.torch, self.peer, self.options = torch, peer, options
    self.device = timing.torch_device(options.torch_device)
    self.grid = timing.TorchGrid(options, options.warmup, options.repeats, device=self.device)
    torch.manual_seed(options.seed)
    self.arch = cfglib.to_dict(gcfg)
    self.nets = {
        "twin": peer.TorchStylizer.from_settings(self.arch).load_jax_params(g_params).eval(),
        "transformer_net": peer.TransformerNet().eval()}
    self.nets = {k: v.to(self.device) for k, v in self.nets.items()}
    # bfloat16 under torch.autocast when jaxstyle computes in bfloat16, else float32.
    self.amp_dtype = torch.bfloat16 if options.dtype == "bfloat16" else None

  def tensor(self, array, fmt=None):
    """NumPy NHWC images (or latents) as a torch tensor on the device (NCHW for 4-D)."""
    if array.ndim == 4:
      array = array.transpose(0, 3, 1, 2)
    t = self.torch.from_numpy(array.copy()).to(self.device)
    return t.contiguous(memory_format=fmt) if fmt is not None else t

  @property
  def compile_error(self) -> str | None:
    return self.grid.compile_error

  def inference(self, name: str, sizes_batches: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """``{(size, batch): {variant: timings}}`` of net ``name``."""
    torch = self.torch
    out = {sb: {} for sb in sizes_batches}
    for v in self.grid.variants():
      net = self.nets[name].to(memory_format=self.grid.fmt(v))
      fn = self.grid.compile(net, v)
      for size, batch in sizes_batches:
        args = [self.tensor(_images(self.options.seed, batch, size), self.grid.fmt(v))]
        if name == "twin":
          args.append(self.tensor(_latent(self.options.seed, batch, self.arch["latent_dim"])))
        with torch.inference_mode(), self.peer.autocast(self.device, self.amp_dtype):
          t = self.grid.measure(lambda fn=fn, args=args: fn(*args), v)
        if t is None:
          break
        out[(size, batch)][v.name] = {**t, "img_per_s": 1e3 * batch / t["median_ms"]}
    return out

  def train(self, setup: dict) -> dict:
    """Train steps of the twin in every variant; ``setup`` from ``_train_setup``."""

    def build(v: timing.Variant):
      self.torch.manual_seed(self.options.seed)
      model = self.peer.TorchStylizer.from_settings(self.arch).load_jax_params(setup["g_params"])
      return self.peer.StylizerTrainStep(
          model, setup["vgg_params"], setup["preprocessing"], setup["content"], setup["grams_np"],
          setup["content_layers"], setup["style_layers"], setup["loss_weights"], setup["bank"],
          channels_last=v.channels_last, seed=self.options.seed,
          compile_fn=self.torch.compile if v.mode == "compile" else None, device=self.device,
          amp_dtype=self.amp_dtype).step

    out = self.grid.run(build, "steps_per_s")
    del out["compile_error"]
    return out


def _jax_inference(gcfg, params, options: Options, sizes_batches, matmul) -> tuple[dict, Any]:
  """``({(size, batch): timings}, output at the first size and batch as NumPy)``."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import stylizer as st  # pylint: disable=g-import-not-at-top
  fn = jax.jit(st.stylizer_fn(gcfg))
  params = jax.device_put(params)
  out, first = {}, None
  for size, batch in sizes_batches:
    x = jax.device_put(_images(options.seed, batch, size))
    lat = jax.device_put(_latent(options.seed, batch, gcfg.latent_dim))
    t0 = time.perf_counter()
    compiled = fn.lower(params, x, lat).compile()
    compile_s = time.perf_counter() - t0
    if first is None:
      first = np.asarray(compiled(params, x, lat)).astype(np.float32)
    t = timing.timed(lambda c=compiled, x=x, lat=lat: jax.block_until_ready(c(params, x, lat)),
               options.warmup, options.repeats)
    out[(size, batch)] = {"compile_s": compile_s, **t, "img_per_s": 1e3 * batch / t["median_ms"],
                          **timing.roofline(timing.xla_cost(compiled), t["median_ms"], matmul)}
  return out, first


def _train_setup(gcfg, options: Options) -> dict:
  """The training problem both sides solve: config, weights, data, initial params."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxstyle import train, vgg  # pylint: disable=g-import-not-at-top
  from jaxstyle.nets import patchgan, style_encoder as se  # pylint: disable=g-import-not-at-top
  from jaxstyle.train import stylizer as ts  # pylint: disable=g-import-not-at-top
  d = gcfg.latent_dim
  cfg = cfglib.validate(ts.StylizerTrainConfig(
      generator=gcfg, discriminator=patchgan.PatchGANConfig(latent_dim=d),
      encoder=se.StyleEncoderConfig(latent_dim=d), latent_source="bank", d_steps=0))
  weights = vgg.random_weights(jax.random.key(options.seed), upto="conv3_4")
  crop, b = options.train_crop, options.train_batch
  rng = np.random.default_rng([options.seed, crop, b])
  styles = rng.random((2, crop, crop, 3), dtype=np.float32)
  grams = ts.style_grams(cfg, weights, styles)
  bank = (cfg.bank_stddev * rng.standard_normal((2, d))).astype(np.float32)
  return {"cfg": cfg, "gcfg": gcfg, "weights": weights, "styles": styles, "grams": grams,
          "grams_np": jax.tree.map(np.asarray, grams),
          "content": rng.random((b, crop, crop, 3), dtype=np.float32), "bank": bank,
          "g_params": random_generator_params(gcfg, options.seed), "tx": train.adam(1e-3),
          "vgg_params": jax.tree.map(np.asarray, dict(weights.params)),
          "preprocessing": weights.preprocessing, "content_layers": dict(cfg.content_layers),
          "style_layers": dict(cfg.style_layers),
          "loss_weights": (cfg.content_weight, cfg.style_weight, cfg.tv_weight, cfg.identity_weight)}


def _jax_train(setup: dict, options: Options, matmul) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from jaxstyle.train import state as tstate, stylizer as ts  # pylint: disable=g-import-not-at-top
  tx = setup["tx"]
  state = tstate.create_state({"g": setup["g_params"], "bank": {"latents": setup["bank"]}},
                              {"g": tx, "bank": tx}, jax.random.key(options.seed))
  state = jax.device_put(state)
  batch = {"content": jax.device_put(setup["content"])}
  step = jax.jit(ts.make_stylizer_step(setup["cfg"], setup["weights"], setup["styles"], tx, tx,
                                       grams=setup["grams"], axis_name=None), donate_argnums=0)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  box = [state]

  def call():
    box[0], metrics = compiled(box[0], batch)
    jax.block_until_ready(metrics)

  t = timing.timed(call, options.warmup, options.repeats)
  return {"compile_s": compile_s, **t, "steps_per_s": 1e3 / t["median_ms"],
          **timing.roofline(timing.xla_cost(compiled), t["median_ms"], matmul)}


def _peak_memory(options: Options, gcfg, layouts: dict[str, str], xla_flags: str,
                 torch_device: str) -> list[dict]:
  """One fresh subprocess per implementation and batch at ``memory_size`` (``xla_flags``: the user's)."""
  rows = []
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join([_EXPERIMENTS] + [p for p in [env.get("PYTHONPATH")] if p])
  env["XLA_FLAGS"] = xla_flags
  for batch in options.memory_batches:
    row = {"size": options.memory_size, "batch": batch}
    for impl in ("jaxstyle",) + (() if options.no_torch else ("twin", "transformer_net")):
      spec = {"impl": impl, "size": options.memory_size, "batch": batch, "seed": options.seed,
              "arch": cfglib.to_dict(gcfg), "fast_cpu_convs": options.fast_cpu_convs,
              "layout": layouts.get(impl, "nchw"), "torch_device": torch_device}
      proc = subprocess.run([sys.executable, "-m", "benchmarks.stylizer", "--peak_memory",
                             json.dumps(spec)], capture_output=True, text=True, env=env,
                            cwd=_EXPERIMENTS, check=False)
      if proc.returncode != 0:
        row[impl] = {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
      else:
        row[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    rows.append(row)
  return rows


def _peak_memory_child(spec: dict) -> dict:
  """Runs one inference of ``spec["impl"]``; returns ``before_run_mib`` and ``peak_mib``."""
  size, batch = spec["size"], spec["batch"]
  images = _images(spec["seed"], batch, size)
  if spec["impl"] == "jaxstyle":
    if spec["fast_cpu_convs"]:
      from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top
      cpu_tuning.use_fast_cpu_convs()
    import jax  # pylint: disable=g-import-not-at-top
    from jaxstyle.nets import stylizer as st  # pylint: disable=g-import-not-at-top
    gcfg = cfglib.from_dict(st.StylizerConfig, spec["arch"])
    params = jax.device_put(random_generator_params(gcfg, spec["seed"]))
    x, lat = jax.device_put(images), jax.device_put(_latent(spec["seed"], batch, gcfg.latent_dim))
    before = timing.peak_rss_mib()
    jax.block_until_ready(jax.jit(st.stylizer_fn(gcfg))(params, x, lat))
    stats = jax.devices()[0].memory_stats() or {}  # None on the CPU
    device_peak = stats.get("peak_bytes_in_use")
  else:
    import torch  # pylint: disable=g-import-not-at-top
    from peers import stylizer as peer  # pylint: disable=g-import-not-at-top
    fmt = torch.channels_last if spec["layout"] == "channels_last" else torch.contiguous_format
    a = spec["arch"]
    net = (peer.TransformerNet() if spec["impl"] == "transformer_net" else
           peer.TorchStylizer.from_settings(a))
    dev = spec.get("torch_device", "cpu")
    net = net.eval().to(dev).to(memory_format=fmt)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2)).to(dev).contiguous(memory_format=fmt)
    args = ((x,) if spec["impl"] == "transformer_net" else
            (x, torch.from_numpy(_latent(spec["seed"], batch, a["latent_dim"])).to(dev)))
    before = timing.peak_rss_mib()
    with torch.inference_mode():
      net(*args)
    device_peak = torch.cuda.max_memory_allocated() if dev == "cuda" else None
  out = {"before_run_mib": before, "peak_mib": timing.peak_rss_mib()}
  if device_peak is not None:  # on a GPU: the device allocator's peak (peak_mib is the host's)
    out["device_peak_mib"] = device_peak / 2.0 ** 20
  if spec["impl"] != "jaxstyle":
    out["layout"] = spec["layout"]
  return out


@register("stylizer", help="stylizer inference/training, jaxstyle vs PyTorch twin and "
          "TransformerNet", options=Options)
def run(options: Options) -> dict:
  """Times every implementation; see the module docstring."""
  xla_flags = os.environ.get("XLA_FLAGS", "")
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top
  applied = cpu_tuning.use_fast_cpu_convs() if options.fast_cpu_convs else False
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  gcfg = generator_config(options)
  params = random_generator_params(gcfg, options.seed)
  sizes_batches = [(s, b) for s in options.sizes for b in options.batches]
  n_jax = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  result: dict[str, Any] = {"architecture": cfglib.to_dict(gcfg), "fast_cpu_convs_applied": applied,
                            "params": {"jaxstyle": n_jax}}
  matmul = timing.matmul_gflops(seed=options.seed)
  result["matmul_f32"] = matmul
  jax_inf, jax_first = _jax_inference(gcfg, params, options, sizes_batches, matmul)
  torch_side = None
  if not options.no_torch:
    try:
      import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
      torch_side = _Torch(options, gcfg, params)
    except ImportError:
      result["torch"] = "not installed"
  rows = [{"size": s, "batch": b, "jaxstyle": jax_inf[(s, b)]} for s, b in sizes_batches]
  layouts = {}
  if torch_side is not None:
    result["params"].update({k: torch_side.peer.num_params(v) for k, v in torch_side.nets.items()})
    result["twin_max_abs_diff"] = _twin_diff(torch_side, jax_first, options, sizes_batches[0])
    for name in ("twin", "transformer_net"):
      timings = torch_side.inference(name, sizes_batches)
      for row in rows:
        row[name] = timing.best(timings[(row["size"], row["batch"])], "img_per_s")
        row[f"jaxstyle_over_{name}"] = timing.ratio(row["jaxstyle"]["img_per_s"], row[name]["img_per_s"])
      best = rows[-1][name]["best"]
      layouts[name] = rows[-1][name]["variants"][best]["layout"] if best else "nchw"
  result["inference"] = rows
  if not options.no_train:
    setup = _train_setup(gcfg, options)
    train = {"crop": options.train_crop, "batch": options.train_batch,
             "jaxstyle": _jax_train(setup, options, matmul)}
    if torch_side is not None:
      train["twin"] = torch_side.train(setup)
      train["jaxstyle_over_twin"] = timing.ratio(train["jaxstyle"]["steps_per_s"], train["twin"]["steps_per_s"])
    result["train"] = train
  if torch_side is not None:
    result["torch_compile_error"] = torch_side.compile_error
    result["torch_device"] = torch_side.device
  if options.memory_size:
    result["peak_memory"] = _peak_memory(options, gcfg, layouts, xla_flags,
                                         torch_side.device if torch_side else "cpu")
  return result


def _twin_diff(torch_side: _Torch, want, options: Options, size_batch) -> float:
  """Max |twin - jaxstyle| of the output ``want`` (NHWC) at ``size_batch`` (seeded latent)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  torch = torch_side.torch
  size, batch = size_batch
  x = _images(options.seed, batch, size)
  lat = _latent(options.seed, batch, torch_side.arch["latent_dim"])
  with torch.inference_mode():
    got = torch_side.nets["twin"].to(memory_format=torch.contiguous_format)(
        torch_side.tensor(x), torch_side.tensor(lat))
  got = got.permute(0, 2, 3, 1).float().cpu().numpy().astype(np.float64)
  return float(np.max(np.abs(got - want)))


if __name__ == "__main__":
  if len(sys.argv) == 3 and sys.argv[1] == "--peak_memory":
    print(json.dumps(_peak_memory_child(json.loads(sys.argv[2]))))
  else:
    sys.exit("usage: python -m benchmarks.stylizer --peak_memory SPEC_JSON (internal helper)")
