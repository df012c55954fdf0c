"""How every benchmark times things, and how it puts a PyTorch peer at its best.

* ``timed(call, warmup, repeats)``: the first call apart (``first_call_s``:
  compilation, caches), ``warmup - 1`` more untimed calls, then ``repeats``
  timed calls: ``median_ms`` with its spread (``min_ms``, ``max_ms``,
  ``iqr_ms``) and every time (``times_ms``).
* ``TorchGrid``: a PyTorch peer is timed in every variant
  ``{mode}_{layout}_{threads}t`` of modes (eager, ``torch.compile``), memory
  layouts (NCHW, channels_last) and thread counts (0 = every core); the
  fastest variant is the reference (``best``). A peer timed in one setup
  only would make any "parity" claim against its weakest form. When
  ``torch.compile`` fails on a machine, the reason is kept
  (``compile_error``) and the eager variants stand. ``TorchGrid(...,
  device="cuda")`` times on the GPU: one thread count (threads do not change
  GPU kernels), every call followed by ``torch.cuda.synchronize()``, and
  TF32 allowed for float32 matmuls and convolutions (the peer at its best;
  XLA's default precision uses TF32 on such GPUs too). ``torch_device(name)``
  resolves ``auto`` (cuda when torch sees a GPU).
* ``peak_rss_mib()``: the process's peak resident set.
* ``xla_cost(compiled)`` and ``roofline(cost, median_ms, matmul)``: XLA's own
  count of a compiled step's FLOPs and bytes, and the rate they imply beside
  the machine's measured f32 matmul rate (``matmul_gflops``): where jaxstyle
  is behind a peer, this says whether its kernels run far from what the
  machine does on a plain matmul (``vs_matmul``) or it does more work (CPU
  only: on a GPU XLA does not count cuDNN calls).

Benchmarks add the grid's flags with ``TorchGridOptions`` (a dataclass
mixin: ``torch_modes``, ``layouts``, ``torch_threads``).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable, Iterator

from jaxstyle import config as cfglib

TORCH_MODES = ("eager", "compile")
LAYOUTS = ("nchw", "channels_last")
TORCH_DEVICES = ("auto", "cpu", "cuda")


def timed(call: Callable[[], Any], warmup: int = 1, repeats: int = 3) -> dict:
  """Times ``call`` (which must block until its work is done); see the module docstring."""
  t0 = time.perf_counter()
  call()
  first = time.perf_counter() - t0
  for _ in range(warmup - 1):
    call()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    call()
    times.append(1e3 * (time.perf_counter() - t0))
  q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
  return {"first_call_s": first, "median_ms": statistics.median(times), "min_ms": min(times),
          "max_ms": max(times), "iqr_ms": q[2] - q[0], "repeats": repeats, "times_ms": times}


def threads(n: int) -> int:
  """``n``, or every core this process may use for 0."""
  if n:
    return n
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def threads_check(values: tuple[int, ...]) -> str | None:
  return None if values and min(values) >= 0 else "needs at least one thread count, each >= 0"


def best(variants: dict[str, dict], rate: str) -> dict:
  """``{"best": name, rate: value, "variants": variants}``, the highest ``rate`` (None if empty)."""
  name = max(variants, key=lambda k: variants[k][rate]) if variants else None
  return {"best": name, rate: variants[name][rate] if name else None, "variants": variants}


def ratio(a: float | None, b: float | None) -> float | None:
  return a / b if a and b else None


def peak_rss_mib() -> float:
  """This process's peak resident set size in MiB.

  ``VmHWM`` of ``/proc/self/status`` where it exists: Linux carries
  ``ru_maxrss`` over ``execve``, so a fresh subprocess's ``ru_maxrss`` starts
  at its parent's size; ``VmHWM`` belongs to the new program's memory alone.
  Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
  """
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return rss / 2.0 ** 20 if sys.platform == "darwin" else rss / 1024.0


def xla_cost(compiled) -> dict[str, float | None]:
  """``{"xla_gflop", "xla_gbytes"}`` of a ``jax.stages.Compiled`` (None where XLA gives no count)."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except  not every backend implements it
    cost = None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  cost = cost or {}
  flops, nbytes = cost.get("flops"), cost.get("bytes accessed")
  return {"xla_gflop": flops / 1e9 if flops else None,
          "xla_gbytes": nbytes / 1e9 if nbytes else None}


def matmul_gflops(n: int = 2048, repeats: int = 5, seed: int = 0) -> dict:
  """The f32 ``jnp.dot`` rate of two n x n matrices: the machine's practical compute roof."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  ka, kb = jax.random.split(jax.random.key(seed))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  dot = jax.jit(jnp.dot).lower(a, b).compile()
  t = timed(lambda: jax.block_until_ready(dot(a, b)), warmup=1, repeats=repeats)
  flops = 2 * n ** 3
  return {"n": n, "median_ms": t["median_ms"], "min_ms": t["min_ms"],
          "gflops": flops / t["min_ms"] / 1e6}


def roofline(cost: dict, median_ms: float, matmul: dict | None, devices: int = 1,
             backend: str | None = None) -> dict:
  """``cost`` (``xla_cost``) plus the achieved GFLOP/s and its share of the matmul rate.

  ``devices``: the program is one SPMD partition of that many (XLA counts one
  partition's work), so the work done is ``devices`` times the count.
  ``backend`` (default: JAX's default backend): only on the CPU does XLA's
  count hold the whole program. On a GPU it leaves out library calls (the
  stylizer's cuDNN convolutions: 8.2 of about 1,300 GFLOP at 1024² batch 4 on
  an H200), so no rate is computed and ``roofline_note`` says why.
  """
  out = dict(cost)
  if backend is None:
    import jax  # pylint: disable=g-import-not-at-top
    backend = jax.default_backend()
  if backend != "cpu":
    out["roofline_note"] = (f"no rate on {backend}: XLA's cost analysis there leaves out library "
                            "calls (cuDNN convolutions), so it undercounts the work")
    return out
  if cost.get("xla_gflop") and median_ms:
    out["achieved_gflops"] = devices * cost["xla_gflop"] / (median_ms / 1e3)
    if matmul and matmul.get("gflops"):
      out["vs_matmul"] = out["achieved_gflops"] / matmul["gflops"]
  return out


@dataclasses.dataclass(frozen=True)
class TorchGridOptions:
  """The PyTorch grid's flags (a mixin of a benchmark's ``Options``)."""
  torch_modes: tuple[str, ...] = cfglib.setting(TORCH_MODES, "PyTorch modes to time: eager, "
                                                "compile (torch.compile, Inductor).",
                                                choices=TORCH_MODES)
  layouts: tuple[str, ...] = cfglib.setting(LAYOUTS, "PyTorch memory formats to time.",
                                            choices=LAYOUTS)
  torch_threads: tuple[int, ...] = cfglib.setting((1, 0), "PyTorch thread counts to time (0: all "
                                                  "cores).", check=threads_check)


def torch_device_setting():
  """The ``--torch_device`` flag of a benchmark whose PyTorch side can run on the GPU."""
  return cfglib.setting("auto", "PyTorch's device: auto (cuda when torch sees a GPU), cpu or cuda.",
                        choices=TORCH_DEVICES)


def torch_device(name: str) -> str:
  """``"cpu"`` or ``"cuda"``: ``name``, with ``"auto"`` meaning cuda when torch sees a GPU."""
  if name != "auto":
    return name
  import torch  # pylint: disable=g-import-not-at-top
  return "cuda" if torch.cuda.is_available() else "cpu"


@dataclasses.dataclass(frozen=True)
class Variant:
  mode: str
  layout: str
  threads: int

  @property
  def name(self) -> str:
    return f"{self.mode}_{self.layout}_{self.threads}t"

  @property
  def channels_last(self) -> bool:
    return self.layout == "channels_last"


class TorchGrid:
  """Runs a PyTorch peer in every variant of ``options`` (a ``TorchGridOptions``).

  ``variants()`` yields each ``Variant`` with torch's thread count set and
  dynamo's caches cleared (Inductor specialises its kernels on the thread
  count); ``compile(fn, variant)`` is ``torch.compile(fn)`` in compile mode;
  ``measure(call, variant)`` times it, or returns None when compiling failed.
  ``device``: ``"cpu"`` or ``"cuda"`` (see the module docstring); the caller
  puts its modules and tensors there.
  """

  def __init__(self, options: TorchGridOptions, warmup: int, repeats: int, device: str = "cpu"):
    import torch  # pylint: disable=g-import-not-at-top
    self.torch, self.options, self.warmup, self.repeats = torch, options, warmup, repeats
    self.device = device
    if device == "cuda":
      torch.backends.cuda.matmul.allow_tf32 = True
      torch.backends.cudnn.allow_tf32 = True
      torch.backends.cudnn.benchmark = True
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit"):
      if hasattr(torch._dynamo.config, name):  # every size, batch and layout compiles once
        setattr(torch._dynamo.config, name, 256)
    self.compile_error: str | None = None

  def fmt(self, variant: Variant):
    return self.torch.channels_last if variant.channels_last else self.torch.contiguous_format

  def variants(self) -> Iterator[Variant]:
    torch = self.torch
    default_threads = torch.get_num_threads()
    o = self.options
    thread_counts = o.torch_threads[:1] if self.device == "cuda" else o.torch_threads
    for v in [Variant(m, l, threads(t)) for t in thread_counts for m in o.torch_modes
              for l in o.layouts]:
      if v.mode == "compile" and self.compile_error:
        continue
      torch.set_num_threads(v.threads)
      torch._dynamo.reset()
      yield v
    torch._dynamo.reset()
    torch.set_num_threads(default_threads)

  def compile(self, fn: Callable, variant: Variant) -> Callable:
    return self.torch.compile(fn, dynamic=False) if variant.mode == "compile" else fn

  def measure(self, call: Callable[[], Any], variant: Variant) -> dict | None:
    """``timed(call)`` plus the variant's settings; None (``compile_error`` set) if compiling failed."""
    if self.device == "cuda":
      synchronize, inner = self.torch.cuda.synchronize, call
      call = lambda: (inner(), synchronize())  # pylint: disable=unnecessary-lambda-assignment
    try:
      t = timed(call, self.warmup, self.repeats)
    except Exception as e:  # pylint: disable=broad-except  torch.compile's backends may fail
      if variant.mode != "compile":
        raise
      lines = str(e).strip().splitlines() or [""]
      self.compile_error = f"{type(e).__name__}: {lines[0][:300]}"
      return None
    if variant.mode == "compile":
      t["compile_s"] = t["first_call_s"]
    t.update(mode=variant.mode, layout=variant.layout, threads=variant.threads, device=self.device)
    return t

  def run(self, build: Callable[[Variant], Callable[[], Any]], rate: str,
          per_call: float = 1.0) -> dict:
    """Times ``build(variant)`` in every variant; ``rate`` = ``per_call`` / median seconds.

    Returns ``best(...)`` of the variants plus ``compile_error``.
    """
    variants = {}
    for v in self.variants():
      t = self.measure(build(v), v)
      if t is not None:
        variants[v.name] = {**t, rate: 1e3 * per_call / t["median_ms"]}
    return {**best(variants, rate), "compile_error": self.compile_error}
