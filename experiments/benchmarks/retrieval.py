"""Benchmark: exact streamed top-k search time and memory vs library size.

  python experiments/benchmark.py retrieval [--sizes 100000,1000000] [--dim 128] [--k 10]
      [--queries 1] [--chunk 65536] [--repeats 3] [--seed 0] [--out results.json]

Synthetic L2-normalised float32 descriptors (seeded), searched with
``jaxstyle.retrieval.topk_search``. Reports per library size: the database
bytes, the first search's wall time (``first_call_s``: compilation included),
then the wall time per query batch (median of ``repeats``), throughput, and the
process peak RSS growth during the search (``ru_maxrss``), which stays near
``chunk · (d + Q) · 4`` bytes beyond the database itself.
"""

from __future__ import annotations

import dataclasses
import resource
import time

from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib


def _rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _database(n: int, d: int, seed: int):
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  x = np.empty((n, d), np.float32)
  step = 100_000
  for s in range(0, n, step):  # filled in blocks: no float64 copy of the whole table
    block = rng.standard_normal((min(step, n - s), d), dtype=np.float32)
    x[s:s + step] = block / np.linalg.norm(block, axis=1, keepdims=True)
  return x


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py retrieval``."""
  sizes: tuple[int, ...] = cfglib.setting((100_000, 1_000_000), "Library sizes, comma-separated.",
                                          check=each_at_least(1))
  dim: int = cfglib.setting(128, "Descriptor dimension d (the default whitened search descriptor "
                            "has d=128).", gt=0)
  k: int = cfglib.setting(10, "Results per query.", gt=0)
  queries: int = cfglib.setting(1, "Queries per search call.", gt=0)
  chunk: int = cfglib.setting(65_536, "Database rows per matrix product.", gt=0)
  repeats: int = cfglib.setting(3, "Timed repeats (median reported).", ge=1)
  seed: int = cfglib.setting(0, "Seed of the synthetic descriptors.")


@register("retrieval", help="top-k search time/memory vs library size", options=Options)
def run(options: Options) -> dict:
  """Times ``topk_search`` at each library size; see the module docstring."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import retrieval  # pylint: disable=g-import-not-at-top

  args = options
  rows = []
  for n in args.sizes:
    db = _database(n, args.dim, args.seed)
    q = _database(args.queries, args.dim, args.seed + 1)
    rss0 = _rss_mib()
    t = time.perf_counter()
    retrieval.topk_search(q, db, args.k, args.chunk)  # compile + warm-up
    first_s = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
      t = time.perf_counter()
      _, idx = retrieval.topk_search(q, db, args.k, args.chunk)
      times.append(time.perf_counter() - t)
    # Correctness spot check against NumPy on the first query.
    ref = np.argsort(-(db @ q[0]), kind="stable")[:args.k]
    rows.append({
        "n": n, "d": args.dim, "k": args.k, "queries": args.queries, "chunk": args.chunk,
        "database_mib": db.nbytes / 2**20, "first_call_s": first_s,
        "seconds_median": float(np.median(times)), "seconds_all": times,
        "descriptors_per_s": n * args.queries / float(np.median(times)),
        "peak_rss_growth_mib": _rss_mib() - rss0,
        "matches_numpy": bool(np.array_equal(np.sort(ref), np.sort(idx[0]))),
    })
    del db
  return {"sizes": rows}
