"""Benchmark: exact streamed top-k search time and memory vs library size.

  python experiments/benchmark.py retrieval [--sizes 100000,1000000] [--dim 128] [--k 10]
      [--queries 1] [--chunk 65536] [--repeats 3] [--seed 0]

Synthetic L2-normalised float32 descriptors (seeded), searched with
``jaxstyle.retrieval.topk_search``. Reports per library size: the database
bytes, the wall time per query batch (median of ``repeats`` after one warm-up
that compiles), throughput, and the process peak RSS growth during the search
(``ru_maxrss``), which stays near ``chunk · (d + Q) · 4`` bytes beyond the
database itself.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxstyle import retrieval  # noqa: E402


def _rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _database(n: int, d: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  x = np.empty((n, d), np.float32)
  step = 100_000
  for s in range(0, n, step):  # filled in blocks: no float64 copy of the whole table
    block = rng.standard_normal((min(step, n - s), d), dtype=np.float32)
    x[s:s + step] = block / np.linalg.norm(block, axis=1, keepdims=True)
  return x


def run(argv) -> dict:
  p = argparse.ArgumentParser(prog="benchmark.py retrieval", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", default="100000,1000000", help="library sizes, comma-separated")
  p.add_argument("--dim", type=int, default=128, help="descriptor dimension d (the default "
                 "whitened search descriptor has d=128)")
  p.add_argument("--k", type=int, default=10, help="results per query")
  p.add_argument("--queries", type=int, default=1, help="queries per search call")
  p.add_argument("--chunk", type=int, default=65_536, help="database rows per matrix product")
  p.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  sizes = [int(s) for s in args.sizes.split(",")]
  rows = []
  for n in sizes:
    db = _database(n, args.dim, args.seed)
    q = _database(args.queries, args.dim, args.seed + 1)
    rss0 = _rss_mib()
    retrieval.topk_search(q, db, args.k, args.chunk)  # compile + warm-up
    times = []
    for _ in range(args.repeats):
      t = time.perf_counter()
      scores, idx = retrieval.topk_search(q, db, args.k, args.chunk)
      times.append(time.perf_counter() - t)
    # Correctness spot check against NumPy on the first query.
    ref = np.argsort(-(db @ q[0]), kind="stable")[:args.k]
    rows.append({
        "n": n, "d": args.dim, "k": args.k, "queries": args.queries, "chunk": args.chunk,
        "database_mib": db.nbytes / 2**20,
        "seconds_median": float(np.median(times)), "seconds_all": times,
        "descriptors_per_s": n * args.queries / float(np.median(times)),
        "peak_rss_growth_mib": _rss_mib() - rss0,
        "matches_numpy": bool(np.array_equal(np.sort(ref), np.sort(idx[0]))),
    })
    del db
  return {"benchmark": "retrieval", "backend": jax.default_backend(),
          "devices": jax.device_count(), "results": rows}


if __name__ == "__main__":
  import json
  print(json.dumps(run(sys.argv[1:]), indent=2))
