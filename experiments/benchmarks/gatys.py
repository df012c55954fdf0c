"""Benchmark: seconds per Gatys optimisation step, jaxstyle vs an in-house PyTorch step.

  python experiments/benchmark.py gatys [--sizes 256,512] [--steps 5] [--repeats 3]
      [--weights partial|random_full] [--variants f32,bf16] [--xla_flags "..."] [--out results.json]

Both sides run the same step: VGG-19 forward to the deepest loss layer,
content + Gram style + TV losses, backward, Adam update, clip to [0, 1]
(``peers.gatys``). ``--weights partial`` (default) uses the real partial
Keras/Caffe weights with the default layers (style relu1_1, relu2_1, relu3_1;
content relu3_2); ``random_full`` uses the same He-random full-depth weights on
both sides with the classic layers (style relu1_1…relu5_1, content relu4_2).
Each size: jaxstyle's step is compiled first (``jax_<variant>_compile_s``),
then timed in blocks of ``--steps`` steps (``benchmarks.timing.timed``:
``--warmup`` untimed blocks, the median of ``--repeats`` blocks, with min and
max as ``*_spread_s_per_step``). The PyTorch twin runs in every variant of
``benchmarks.timing.TorchGrid`` (eager and ``torch.compile`` of the loss,
NCHW and channels_last, 1 and all threads: ``torch_variants_s_per_step``);
the fastest variant is the reference (``torch_s_per_step``, ``torch_best``).
jaxstyle's step also carries XLA's FLOP count and the rate it implies against
the measured f32 matmul rate (``jax_<variant>_roofline``, ``matmul_f32``).
Also reports the step-0 loss of both sides (parity check). PyTorch runs only
if importable.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from benchmarks import timing
from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_VARIANT_DTYPES = {"f32": "float32", "bf16": "bfloat16"}


def _default_partial() -> str:
  return os.path.join(os.path.dirname(_REPO), "shared", "data", "vgg19",
                      "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz")


@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The flags of ``benchmark.py gatys`` (and the PyTorch grid's)."""
  sizes: tuple[int, ...] = cfglib.setting((256, 512), "Square image sizes, comma-separated.",
                                          check=each_at_least(1))
  steps: int = cfglib.setting(5, "Steps per timed block.", ge=1)
  warmup: int = cfglib.setting(1, "Untimed blocks first (compilation, caches).", ge=1)
  repeats: int = cfglib.setting(3, "Timed blocks; the median is reported, with min and max.", ge=1)
  weights: str = cfglib.setting("partial", "Real partial Caffe weights (default layers) or random "
                                "full weights (classic layers), the same on both sides.",
                                choices=("partial", "random_full"))
  vgg_weights: str | None = cfglib.setting(None, "Path of the partial weights (default: "
                                           "../shared/data/vgg19/…PARTIAL.npz, else $JAXSTYLE_VGG19).")
  variants: tuple[str, ...] = cfglib.setting(("f32",), "jaxstyle variants: f32, bf16 (VGG compute "
                                             "dtype), comma-separated.",
                                             choices=tuple(_VARIANT_DTYPES),
                                             check=lambda v: None if v else "needs a variant")
  xla_flags: str | None = cfglib.setting(None, "Extra XLA_FLAGS (set before JAX starts).")
  no_torch: bool = cfglib.setting(False, "Skip the PyTorch side.")
  seed: int = cfglib.setting(0, "Seed of the random images (and of random_full's weights).")


@register("gatys", help="one Gatys optimisation step, jaxstyle vs PyTorch", options=Options)
def run(options: Options) -> dict:
  """Times both sides at each size; see the module docstring."""
  args = options
  if args.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import optimize, vgg  # pylint: disable=g-import-not-at-top

  if args.weights == "partial":
    path = args.vgg_weights or (_default_partial() if os.path.exists(_default_partial()) else None)
    weights = vgg.load_weights(path)
    cfg = optimize.StylizeConfig(gamma=1e-2)
  else:
    weights = vgg.random_weights(jax.random.PRNGKey(args.seed), "conv5_4")
    cfg = optimize.StylizeConfig(style_layers=optimize.CLASSIC_STYLE_LAYERS,
                                 content_layers=optimize.CLASSIC_CONTENT_LAYERS, gamma=1e-2)
  rng = np.random.RandomState(args.seed)
  result = {"weights_source": weights.source,
            "layers": {"content": dict(cfg.content_layers), "style": dict(cfg.style_layers)},
            "sizes": {}}
  try:
    import torch  # pylint: disable=g-import-not-at-top
    from peers import gatys as peer_gatys  # pylint: disable=g-import-not-at-top
    have_torch = not args.no_torch
    result["torch_threads"] = torch.get_num_threads()
  except ImportError:
    have_torch = False
  matmul = result["matmul_f32"] = timing.matmul_gflops(seed=args.seed)
  for size in args.sizes:
    content = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    entry = {}
    for variant in args.variants:
      c = cfg.replace(dtype=_VARIANT_DTYPES[variant])
      objective = optimize.Objective(weights.preprocessing, c)
      stepper = optimize.make_stepper(objective, c)  # Adam: one jitted step
      variables = weights.variables()
      targets = jax.jit(objective.targets)(variables, jnp.asarray(content),
                                           [jnp.asarray(style)], [1.0])
      p = jnp.asarray(content)[None]
      state = stepper.init(p, variables, targets)
      t0 = time.perf_counter()
      step = stepper.step.lower(p, state, variables, targets).compile()
      compile_s = time.perf_counter() - t0
      box = {"p": p, "state": state}
      loss0 = float(step(p, state, variables, targets)[2]["loss"])

      def block(step=step, box=box, targets=targets, variables=variables):
        for _ in range(args.steps):
          box["p"], box["state"], _ = step(box["p"], box["state"], variables, targets)
        jax.block_until_ready(box["p"])

      t = timing.timed(block, args.warmup, args.repeats)
      entry[f"jax_{variant}_s_per_step"] = t["median_ms"] / 1e3 / args.steps
      entry[f"jax_{variant}_spread_s_per_step"] = [t["min_ms"] / 1e3 / args.steps,
                                                    t["max_ms"] / 1e3 / args.steps]
      entry[f"jax_{variant}_compile_s"] = compile_s
      entry[f"jax_{variant}_roofline"] = timing.roofline(
          timing.xla_cost(step), t["median_ms"] / args.steps, matmul)
      entry[f"jax_{variant}_loss0"] = loss0
    if have_torch:
      entry.update(_time_torch(peer_gatys, weights, cfg, content, style, args))
      for variant in args.variants:
        entry[f"ratio_jax_{variant}_over_torch"] = timing.ratio(
            entry[f"jax_{variant}_s_per_step"], entry.get("torch_s_per_step"))
    result["sizes"][str(size)] = entry
    print({size: entry}, file=sys.stderr, flush=True)
  return result


def _time_torch(peer_gatys, weights, cfg, content, style, args) -> dict:
  """The PyTorch twin in every variant of the grid; ``torch_s_per_step`` is the fastest's median.

  Which mode, layout and thread count is fastest depends on the machine and
  its load, so the fastest variant is the fair reference.
  """
  grid = timing.TorchGrid(args, args.warmup, args.repeats)
  loss0 = []

  def build(v):
    tv = peer_gatys.TorchVGG(weights.params, weights.preprocessing, channels_last=v.channels_last)
    tg = peer_gatys.TorchGatys(tv, content, style, dict(cfg.content_layers),
                               dict(cfg.style_layers), cfg.alpha, cfg.beta, cfg.gamma,
                               cfg.learning_rate)
    with peer_gatys.torch.no_grad():
      loss0.append(tg.loss(tg.x)["loss"].item())
    tg.loss = grid.compile(tg.loss, v)

    def block():
      for _ in range(args.steps):
        tg.step()

    return block

  out = grid.run(build, "steps_per_s", per_call=args.steps)
  entry = {"torch_loss0": loss0[0] if loss0 else None, "torch_best": out["best"],
           "torch_compile_error": out["compile_error"],
           "torch_variants_s_per_step": {k: v["median_ms"] / 1e3 / args.steps
                                         for k, v in out["variants"].items()}}
  if out["best"]:
    entry["torch_s_per_step"] = 1.0 / out["steps_per_s"]
  return entry
