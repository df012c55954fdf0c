"""VGG-19 throughput benchmark: forward to relu5_1 and forward+backward w.r.t. the input.

  python experiments/benchmark.py vgg [--sizes 256,512] [--batch 1] [--repeats 5]
      [--dtype float32|bfloat16] [--layout nhwc|nchw] [--weights args|constants] [--seed 0]
      [--out results.json]

Weights are random He-initialised full VGG-19 weights
(``vgg.random_weights``; the real weights on these machines stop at conv3_4),
seeded. FLOPs are counted analytically: 2·H·W·Cin·Cout·9 per conv up to
conv5_1 (pooling, bias and ReLU are not counted); forward+backward w.r.t. the
input counts 2× the forward FLOPs (one input-gradient conv per conv, no
weight gradients). The same run measures f32 matmul GFLOP/s (``jnp.dot`` of
two N×N matrices) before and after the VGG timings, and reports the better of
the two as the machine's rate. Timings are the best of ``--repeats`` runs
after one warm-up (the median is reported too), apart from the compile time
(``*_compile_s``). Other processes share the CPU, so every rate is also given
per CPU-second of this process (``*_per_cpu_s``, ``*_vs_matmul_cpu_s``),
which a loaded machine distorts much less than wall-clock rates.

The in-house PyTorch trunk (``peers.vgg``, the same weights, preprocessing
included) is timed at every size in every variant of
``benchmarks.timing.TorchGrid`` (eager and ``torch.compile``, NCHW and
channels_last, 1 and all threads; median of ``--repeats`` after one warm-up);
the fastest variant is the reference (``torch_forward_*``,
``torch_fwd_bwd_*``, ``jax_over_torch_*``). ``--no_torch`` skips it;
``--torch_device`` (default auto: cuda when torch sees a GPU; recorded per
size as ``torch_device``) puts it on the GPU.

XLA flags cannot change inside a process: compare them by running this
benchmark under different ``XLA_FLAGS`` (recorded in the record's ``meta``).
"""

from __future__ import annotations

import dataclasses
import statistics
import time

from benchmarks import timing
from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

LAYER = "relu5_1"


def conv_flops(height: int, width: int, upto: str = "conv5_1", batch: int = 1) -> int:
  """Analytic conv FLOPs (2·H·W·Cin·Cout·9 per conv) of VGG-19 up to ``upto``."""
  from jaxstyle import vgg  # pylint: disable=g-import-not-at-top
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
  import jax  # pylint: disable=g-import-not-at-top
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
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
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
  import jax  # pylint: disable=g-import-not-at-top
  from jaxstyle import vgg  # pylint: disable=g-import-not-at-top
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
  from jaxstyle import vgg  # pylint: disable=g-import-not-at-top
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


@dataclasses.dataclass(frozen=True)
class Options(timing.TorchGridOptions):
  """The flags of ``benchmark.py vgg`` (and the PyTorch grid's)."""
  sizes: tuple[int, ...] = cfglib.setting((256, 512), "Square input sizes, comma-separated.",
                                          check=each_at_least(16))
  batch: int = cfglib.setting(1, "Images per call.", ge=1)
  repeats: int = cfglib.setting(5, "Timed runs per measurement (best is kept).", ge=1)
  dtype: str = cfglib.setting("float32", "VGG compute dtype (the matmul reference is always "
                              "float32).", choices=("float32", "bfloat16"))
  layout: str = cfglib.setting("nhwc", "nhwc: jaxstyle.vgg.VGG19 itself; nchw: the same trunk "
                               "with NCHW convs.", choices=("nhwc", "nchw"))
  weights: str = cfglib.setting("args", "Pass the weights as jit arguments, or close over them "
                                "(constants).", choices=("args", "constants"))
  matmul_n: int = cfglib.setting(2048, "Matrix size of the matmul reference.", gt=0)
  no_backward: bool = cfglib.setting(False, "Skip forward+backward.")
  seed: int = cfglib.setting(0, "Seed of weights and inputs.")
  no_torch: bool = cfglib.setting(False, "Skip the PyTorch trunk.")
  torch_device: str = timing.torch_device_setting()


def _torch_side(weights, options: Options, entry: dict, x_nhwc) -> None:
  """Adds the PyTorch trunk's best forward (and forward+backward) timings to ``entry``."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from peers import vgg as peer_vgg  # pylint: disable=g-import-not-at-top
  device = timing.torch_device(options.torch_device)
  grid = timing.TorchGrid(options, warmup=1, repeats=options.repeats, device=device)
  params = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in weights.params.items()}
  x0 = torch.from_numpy(np.asarray(x_nhwc, np.float32).transpose(0, 3, 1, 2).copy()).to(device)
  entry["torch_device"] = device

  def trunk(v):
    features = peer_vgg.features_from_params(params, channels_last=v.channels_last).to(device)

    def forward(x):
      x = peer_vgg.preprocess(x, weights.preprocessing)
      return features(x.contiguous(memory_format=grid.fmt(v)))

    return grid.compile(forward, v)

  def build_forward(v):
    fn, x = trunk(v), x0.contiguous(memory_format=grid.fmt(v))

    def call():
      with torch.inference_mode():
        fn(x)
    return call

  def build_fwd_bwd(v):
    fn = trunk(v)

    def call():
      x = x0.clone().requires_grad_(True)
      (fn(x) ** 2).sum().backward()
    return call

  parts = [("forward", build_forward, 1)] + ([] if options.no_backward else
                                             [("fwd_bwd", build_fwd_bwd, 2)])
  for part, build, mult in parts:
    out = grid.run(build, "calls_per_s")
    entry[f"torch_{part}_best"] = out["best"]
    entry[f"torch_{part}_variants_median_ms"] = {k: t["median_ms"] for k, t in out["variants"].items()}
    if out["best"]:
      entry[f"torch_{part}_median_ms"] = 1e3 / out["calls_per_s"]
      entry[f"torch_{part}_gflops"] = mult * entry["gflop_forward"] * out["calls_per_s"]
      entry[f"jax_over_torch_{part}"] = timing.ratio(entry[f"torch_{part}_median_ms"],
                                                     entry[f"{part}_median_ms"])
    entry["torch_compile_error"] = out["compile_error"]


def _have_torch() -> bool:
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


@register("vgg", help="VGG-19 forward / forward+backward vs matmul GFLOP/s", options=Options)
def run(options: Options) -> dict:
  """Times the forward and forward+backward at each size; see the module docstring."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxstyle import vgg  # pylint: disable=g-import-not-at-top

  args = options
  dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
  weights = vgg.random_weights(jax.random.key(args.seed), upto="conv5_1")
  forward, variables = _build(weights, args.layout, dtype, args.weights)

  def loss(variables, x):
    return jnp.sum(forward(variables, x).astype(jnp.float32) ** 2)

  fwd, fwd_bwd = jax.jit(forward), jax.jit(jax.grad(loss, argnums=1))
  matmul_before = matmul_gflops(args.matmul_n, args.repeats, args.seed)
  results = []
  for size in args.sizes:
    x = jax.random.uniform(jax.random.fold_in(jax.random.key(args.seed), size),
                           (args.batch, size, size, 3), jnp.float32)
    flops = conv_flops(size, size, batch=args.batch)
    compiled, compile_s = _compile(fwd, variables, x)
    best, median, cpu = _time(compiled, variables, x, repeats=args.repeats)
    entry = {"size": size, "batch": args.batch, "gflop_forward": flops / 1e9,
             "forward_compile_s": compile_s,
             "forward_best_ms": best * 1e3, "forward_median_ms": median * 1e3,
             "forward_gflops": flops / best / 1e9, "forward_gflops_per_cpu_s": flops / cpu / 1e9}
    if not args.no_backward:
      compiled, compile_s = _compile(fwd_bwd, variables, x)
      best, median, cpu = _time(compiled, variables, x, repeats=args.repeats)
      entry.update({"fwd_bwd_compile_s": compile_s,
                    "fwd_bwd_best_ms": best * 1e3, "fwd_bwd_median_ms": median * 1e3,
                    "fwd_bwd_gflops": 2 * flops / best / 1e9,
                    "fwd_bwd_gflops_per_cpu_s": 2 * flops / cpu / 1e9})
    if not args.no_torch and _have_torch():
      _torch_side(weights, args, entry, x)
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
      "layer": LAYER,
      "matmul_f32": {"before": matmul_before, "after": matmul_after, "gflops": matmul_rate,
                     "gflops_per_cpu_s": matmul_cpu_rate},
      "sizes": results,
      "target_forward_vs_matmul": 0.9,
  }


def _compile(jitted, *args):
  """(compiled executable, seconds to lower and compile it)."""
  t0 = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - t0
