"""VGG-19 throughput benchmark: forward to relu5_1 and forward+backward w.r.t. the input.

  python experiments/benchmark.py vgg [--sizes 256,512] [--batch 1] [--repeats 5]
      [--dtype float32|bfloat16] [--layout nhwc|nchw] [--weights args|constants] [--seed 0]

Prints one JSON object. Weights are random He-initialised full VGG-19 weights
(``vgg.random_weights``; the real weights on these machines stop at conv3_4),
seeded. FLOPs are counted analytically: 2·H·W·Cin·Cout·9 per conv up to
conv5_1 (pooling, bias and ReLU are not counted); forward+backward w.r.t. the
input counts 2× the forward FLOPs (one input-gradient conv per conv, no
weight gradients). The same run measures f32 matmul GFLOP/s (``jnp.dot`` of
two N×N matrices) before and after the VGG timings, and reports the better of
the two as the machine's rate. Timings are the best of ``--repeats`` runs
after one warm-up (the median is reported too): other processes share the CPU,
so the load average is recorded at the start and the end, and every rate is
also given per CPU-second of this process (``*_per_cpu_s``, ``*_vs_matmul_cpu_s``),
which a loaded machine distorts much less than wall-clock rates.

XLA flags cannot change inside a process: compare them by running this
benchmark under different ``XLA_FLAGS`` (recorded in the output).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxstyle import vgg  # noqa: E402

LAYER = "relu5_1"


def conv_flops(height: int, width: int, upto: str = "conv5_1", batch: int = 1) -> int:
  """Analytic conv FLOPs (2·H·W·Cin·Cout·9 per conv) of VGG-19 up to ``upto``."""
  total, cin, h, w = 0, 3, height, width
  for b, n, cout in vgg.BLOCKS:
    for c in range(1, n + 1):
      total += 2 * h * w * cin * cout * 9
      cin = cout
      if f"conv{b}_{c}" == upto:
        return total * batch
    h, w = h // 2, w // 2
  return total * batch


def _time(fn, *args, repeats: int) -> tuple[float, float, float]:
  """(best, median) wall seconds and best process CPU seconds of ``fn(*args)``.

  One warm-up call first. CPU seconds (all threads of this process) make a
  rate that other processes on the machine disturb much less than wall time.
  """
  jax.block_until_ready(fn(*args))
  times, cpu = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  return min(times), statistics.median(times), min(cpu)


def matmul_gflops(n: int, repeats: int, seed: int) -> dict:
  """f32 ``jnp.dot`` rate of two n×n matrices."""
  ka, kb = jax.random.split(jax.random.key(seed))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  best, median, cpu = _time(dot, a, b, repeats=repeats)
  flops = 2 * n ** 3
  return {"n": n, "best_ms": best * 1e3, "median_ms": median * 1e3, "gflops": flops / best / 1e9,
          "gflops_per_cpu_s": flops / cpu / 1e9}


def _nchw_forward(params: dict, images: jax.Array, preprocessing: str, dtype) -> jax.Array:
  """The same trunk with NCHW/OIHW convolutions (layout comparison only)."""
  x = vgg.preprocess(images, preprocessing).astype(dtype).transpose(0, 3, 1, 2)
  for tap in vgg.TAPS[:vgg.TAPS.index(LAYER) + 1]:
    if tap.startswith("conv"):
      k = params[tap]["kernel"].astype(dtype).transpose(3, 2, 0, 1)
      x = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"))
      x = x + params[tap]["bias"].astype(dtype)[None, :, None, None]
    elif tap.startswith("relu"):
      x = jax.nn.relu(x)
    else:
      b, c, h, w = x.shape
      x = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
  return x.transpose(0, 2, 3, 1)


def _build(weights: vgg.VGGWeights, layout: str, dtype, weights_mode: str):
  """Returns (forward(variables, x), variables) for the chosen variant."""
  if layout == "nhwc":
    model = vgg.VGG19(preprocessing=weights.preprocessing, dtype=dtype)

    def forward(variables, x):
      return model.apply(variables, x, (LAYER,))[LAYER]
  else:

    def forward(variables, x):
      return _nchw_forward(variables["params"], x, weights.preprocessing, dtype)

  variables = weights.variables()
  if weights_mode == "constants":  # weights closed over: compile-time constants
    bound = variables
    return (lambda _, x: forward(bound, x)), None
  return forward, variables


def _parse(argv):
  p = argparse.ArgumentParser(prog="benchmark.py vgg", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", default="256,512", help="square input sizes, comma-separated")
  p.add_argument("--batch", type=int, default=1, help="images per call")
  p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (best is kept)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="VGG compute dtype (the matmul reference is always float32)")
  p.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                 help="nhwc: jaxstyle.vgg.VGG19 itself; nchw: the same trunk with NCHW convs")
  p.add_argument("--weights", choices=("args", "constants"), default="args",
                 help="pass the weights as jit arguments, or close over them (constants)")
  p.add_argument("--matmul_n", type=int, default=2048, help="matrix size of the matmul reference")
  p.add_argument("--no_backward", action="store_true", help="skip forward+backward")
  p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs")
  args = p.parse_args(argv)
  try:
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
  except ValueError:
    p.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
  if not args.sizes or min(args.sizes) < 16 or args.batch < 1 or args.repeats < 1:
    p.error("--sizes must be >= 16 and --batch, --repeats >= 1")
  return args


def run(argv) -> dict:
  args = _parse(argv)
  dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
  load_start = os.getloadavg()
  weights = vgg.random_weights(jax.random.key(args.seed), upto="conv5_1")
  forward, variables = _build(weights, args.layout, dtype, args.weights)
  fwd = jax.jit(forward)

  def loss(variables, x):
    return jnp.sum(forward(variables, x).astype(jnp.float32) ** 2)

  fwd_bwd = jax.jit(jax.grad(loss, argnums=1))
  matmul_before = matmul_gflops(args.matmul_n, args.repeats, args.seed)
  results = []
  for size in args.sizes:
    x = jax.random.uniform(jax.random.fold_in(jax.random.key(args.seed), size),
                           (args.batch, size, size, 3), jnp.float32)
    flops = conv_flops(size, size, batch=args.batch)
    t0 = time.perf_counter()
    jax.block_until_ready(fwd.lower(variables, x).compile()(variables, x))
    compile_s = time.perf_counter() - t0
    best, median, cpu = _time(fwd, variables, x, repeats=args.repeats)
    entry = {"size": size, "batch": args.batch, "gflop_forward": flops / 1e9,
             "forward_compile_s": compile_s,
             "forward_best_ms": best * 1e3, "forward_median_ms": median * 1e3,
             "forward_gflops": flops / best / 1e9, "forward_gflops_per_cpu_s": flops / cpu / 1e9}
    if not args.no_backward:
      best, median, cpu = _time(fwd_bwd, variables, x, repeats=args.repeats)
      entry.update({"fwd_bwd_best_ms": best * 1e3, "fwd_bwd_median_ms": median * 1e3,
                    "fwd_bwd_gflops": 2 * flops / best / 1e9,
                    "fwd_bwd_gflops_per_cpu_s": 2 * flops / cpu / 1e9})
    results.append(entry)
  matmul_after = matmul_gflops(args.matmul_n, args.repeats, args.seed)
  matmul_rate = max(matmul_before["gflops"], matmul_after["gflops"])
  matmul_cpu_rate = max(matmul_before["gflops_per_cpu_s"], matmul_after["gflops_per_cpu_s"])
  for entry in results:
    entry["forward_vs_matmul"] = entry["forward_gflops"] / matmul_rate
    entry["forward_vs_matmul_cpu_s"] = entry["forward_gflops_per_cpu_s"] / matmul_cpu_rate
    if "fwd_bwd_gflops" in entry:
      entry["fwd_bwd_vs_matmul"] = entry["fwd_bwd_gflops"] / matmul_rate
      entry["fwd_bwd_vs_matmul_cpu_s"] = entry["fwd_bwd_gflops_per_cpu_s"] / matmul_cpu_rate
  return {
      "benchmark": "vgg",
      "layer": LAYER,
      "config": {k: v for k, v in vars(args).items()},
      "matmul_f32": {"before": matmul_before, "after": matmul_after, "gflops": matmul_rate,
                     "gflops_per_cpu_s": matmul_cpu_rate},
      "results": results,
      "target_forward_vs_matmul": 0.9,
      "machine": {"platform": platform.platform(), "processor": platform.processor(),
                  "cpu_count": os.cpu_count(), "jax": jax.__version__,
                  "backend": jax.default_backend(), "devices": len(jax.devices()),
                  "xla_flags": os.environ.get("XLA_FLAGS", ""),
                  "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
  }
