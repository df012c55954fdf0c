"""Benchmark: seconds per Gatys optimisation step, jaxstyle vs an in-house PyTorch step.

  python experiments/benchmark.py gatys [--sizes 256,512] [--steps 5] [--repeats 3]
      [--weights partial|random_full] [--variants f32,bf16] [--xla_flags "..."]

Both sides run the same step: VGG-19 forward to the deepest loss layer,
content + Gram style + TV losses, backward, Adam update, clip to [0, 1]
(experiments/torch_ref.py). ``--weights partial`` (default) uses the real
partial Keras/Caffe weights with the default layers (style relu1_1, relu2_1,
relu3_1; content relu3_2); ``random_full`` uses the same He-random full-depth
weights on both sides with the classic layers (style relu1_1…relu5_1, content
relu4_2). Each size: ``--steps`` timed steps after 2 warm-up steps, best mean
of ``--repeats`` rounds (other processes share the CPU, so best-of is the
fairest figure). PyTorch is timed channels_last with all threads, channels_last
with 1 thread and NCHW with 1 thread; the fastest is the reference. Also reports the step-0 loss of both sides (parity check).
PyTorch runs only if importable.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a source checkout
  sys.path.insert(0, _ROOT)


def _parse(argv):
  p = argparse.ArgumentParser(prog="benchmark.py gatys")
  p.add_argument("--sizes", default="256,512", help="Square image sizes, comma-separated.")
  p.add_argument("--steps", type=int, default=5, help="Timed steps per round.")
  p.add_argument("--repeats", type=int, default=3, help="Rounds; the best is reported.")
  p.add_argument("--weights", choices=["partial", "random_full"], default="partial",
                 help="Real partial Caffe weights (default layers) or random full weights "
                      "(classic layers), the same on both sides.")
  p.add_argument("--vgg_weights", default=None, help="Path of the partial weights (default: "
                 "../shared/data/vgg19/…PARTIAL.npz, else $JAXSTYLE_VGG19).")
  p.add_argument("--variants", default="f32", help="jaxstyle variants: f32, bf16 (VGG compute "
                 "dtype), comma-separated.")
  p.add_argument("--xla_flags", default=None, help="Extra XLA_FLAGS (set before JAX starts).")
  p.add_argument("--no_torch", action="store_true", help="Skip the PyTorch side.")
  return p.parse_args(argv)


def _default_partial():
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(here), "shared", "data", "vgg19",
                      "vgg19_imagenet_keras_conv1_1-conv3_4_PARTIAL.npz")


def run(argv) -> dict:
  args = _parse(argv)
  if args.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxstyle import optimize, vgg

  if args.weights == "partial":
    path = args.vgg_weights or (_default_partial() if os.path.exists(_default_partial()) else None)
    weights = vgg.load_weights(path)
    cfg = optimize.StylizeConfig(gamma=1e-2)
  else:
    weights = vgg.random_weights(jax.random.PRNGKey(0), "conv5_4")
    cfg = optimize.StylizeConfig(style_layers=optimize.CLASSIC_STYLE_LAYERS,
                                 content_layers=optimize.CLASSIC_CONTENT_LAYERS, gamma=1e-2)
  rng = np.random.RandomState(0)
  result = {"benchmark": "gatys", "weights": args.weights, "weights_source": weights.source,
            "layers": {"content": dict(cfg.content_layers), "style": dict(cfg.style_layers)},
            "steps": args.steps, "repeats": args.repeats, "jax_devices": str(jax.devices()),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "sizes": {}}
  variants = [v.strip() for v in args.variants.split(",") if v.strip()]
  try:
    import torch
    import torch_ref
    have_torch = not args.no_torch
    result["torch_threads"] = torch.get_num_threads()
    result["torch_version"] = torch.__version__
  except ImportError:
    have_torch = False
  for size in [int(s) for s in args.sizes.split(",")]:
    content = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    entry = {}
    for variant in variants:
      c = cfg.replace(dtype={"f32": "float32", "bf16": "bfloat16"}[variant])
      objective = optimize._Objective(weights.preprocessing, c)  # pylint: disable=protected-access
      opt = optimize.make_optimizer(c)
      step = jax.jit(optimize.make_step(objective, opt, c))
      variables = weights.variables()
      targets = jax.jit(objective.targets)(variables, jnp.asarray(content),
                                           [jnp.asarray(style)], [1.0])
      p = jnp.asarray(content)[None]
      state = opt.init(p)
      t0 = time.perf_counter()
      p, state, parts = step(p, state, variables, targets)
      jax.block_until_ready(p)
      compile_s = time.perf_counter() - t0
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
      entry[f"jax_{variant}_first_call_s"] = compile_s
      entry[f"jax_{variant}_loss0"] = loss0
    if have_torch:
      # The fastest of several torch setups is the reference (a fair baseline): on a
      # shared, oversubscribed CPU, one intra-op thread can beat two (OpenMP barriers).
      all_threads = torch.get_num_threads()
      for layout, channels_last, threads in (("channels_last", True, all_threads),
                                             ("channels_last_1thread", True, 1),
                                             ("nchw_1thread", False, 1)):
        torch.set_num_threads(threads)
        tv = torch_ref.TorchVGG(weights.params, weights.preprocessing, channels_last=channels_last)
        tg = torch_ref.TorchGatys(tv, content, style, dict(cfg.content_layers),
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
      best = min(v for k, v in entry.items() if k.startswith("torch_") and k.endswith("_s_per_step"))
      entry["torch_s_per_step"] = best
      for variant in variants:
        entry[f"ratio_jax_{variant}_over_torch"] = entry[f"jax_{variant}_s_per_step"] / best
    result["sizes"][str(size)] = entry
    print({size: entry}, file=sys.stderr, flush=True)
  return result
