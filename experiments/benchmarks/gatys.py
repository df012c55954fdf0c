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
then ``--steps`` timed steps after 2 warm-up steps, best mean of ``--repeats``
rounds (other processes share the CPU, so best-of is the fairest figure).
PyTorch is timed channels_last with all threads, channels_last with 1 thread
and NCHW with 1 thread; the fastest is the reference. Also reports the step-0
loss of both sides (parity check). PyTorch runs only if importable.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_VARIANT_DTYPES = {"f32": "float32", "bf16": "bfloat16"}


def _default_partial() -> str:
  return os.path.join(os.path.dirname(_REPO), "shared", "data", "vgg19",
                      "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz")


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py gatys``."""
  sizes: tuple[int, ...] = cfglib.setting((256, 512), "Square image sizes, comma-separated.",
                                          check=each_at_least(1))
  steps: int = cfglib.setting(5, "Timed steps per round.", ge=1)
  repeats: int = cfglib.setting(3, "Rounds; the best is reported.", ge=1)
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
    weights = vgg.random_weights(jax.random.PRNGKey(0), "conv5_4")
    cfg = optimize.StylizeConfig(style_layers=optimize.CLASSIC_STYLE_LAYERS,
                                 content_layers=optimize.CLASSIC_CONTENT_LAYERS, gamma=1e-2)
  rng = np.random.RandomState(0)
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
  for size in args.sizes:
    content = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    entry = {}
    for variant in args.variants:
      c = cfg.replace(dtype=_VARIANT_DTYPES[variant])
      objective = optimize.Objective(weights.preprocessing, c)
      opt = optimize.make_optimizer(c)
      variables = weights.variables()
      targets = jax.jit(objective.targets)(variables, jnp.asarray(content),
                                           [jnp.asarray(style)], [1.0])
      p = jnp.asarray(content)[None]
      state = opt.init(p)
      t0 = time.perf_counter()
      step = jax.jit(optimize.make_step(objective, opt, c)).lower(p, state, variables,
                                                                  targets).compile()
      compile_s = time.perf_counter() - t0
      t0 = time.perf_counter()
      p, state, parts = step(p, state, variables, targets)
      jax.block_until_ready(p)
      first_s = time.perf_counter() - t0
      loss0 = float(parts["loss"])
      p, state, parts = step(p, state, variables, targets)
      best = float("inf")
      for _ in range(args.repeats):
        jax.block_until_ready(p)
        t0 = time.perf_counter()
        for _ in range(args.steps):
          p, state, parts = step(p, state, variables, targets)
        jax.block_until_ready(p)
        best = min(best, (time.perf_counter() - t0) / args.steps)
      entry[f"jax_{variant}_s_per_step"] = best
      entry[f"jax_{variant}_compile_s"] = compile_s
      entry[f"jax_{variant}_first_step_s"] = first_s
      entry[f"jax_{variant}_loss0"] = loss0
    if have_torch:
      entry.update(_time_torch(peer_gatys, torch, weights, cfg, content, style, args))
      best = entry["torch_s_per_step"]
      for variant in args.variants:
        entry[f"ratio_jax_{variant}_over_torch"] = entry[f"jax_{variant}_s_per_step"] / best
    result["sizes"][str(size)] = entry
    print({size: entry}, file=sys.stderr, flush=True)
  return result


def _time_torch(peer_gatys, torch, weights, cfg, content, style, args) -> dict:
  """The PyTorch twin in each layout/thread setup; ``torch_s_per_step`` is the fastest.

  Which layout and thread count is fastest depends on the machine and its load,
  so the fastest setup is the fair reference.
  """
  entry = {}
  all_threads = torch.get_num_threads()
  for layout, channels_last, threads in (("channels_last", True, all_threads),
                                         ("channels_last_1thread", True, 1),
                                         ("nchw_1thread", False, 1)):
    torch.set_num_threads(threads)
    tv = peer_gatys.TorchVGG(weights.params, weights.preprocessing, channels_last=channels_last)
    tg = peer_gatys.TorchGatys(tv, content, style, dict(cfg.content_layers),
                               dict(cfg.style_layers), cfg.alpha, cfg.beta, cfg.gamma,
                               cfg.learning_rate)
    entry["torch_loss0"] = tg.step()["loss"]
    tg.step()
    best = float("inf")
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      for _ in range(args.steps):
        tg.step()
      best = min(best, (time.perf_counter() - t0) / args.steps)
    entry[f"torch_{layout}_s_per_step"] = best
  torch.set_num_threads(all_threads)
  entry["torch_s_per_step"] = min(v for k, v in entry.items() if k.endswith("_s_per_step"))
  return entry
