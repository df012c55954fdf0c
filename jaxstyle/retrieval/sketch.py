"""Count sketch: a seeded sparse random projection ``R^n -> R^m``.

``x ↦ Σ_i s(i) x_i e_{h(i)}`` with a seeded hash ``h: [n] -> [m]`` and signs
``s: [n] -> {-1, +1}``. Inner products are preserved in expectation, and
applying it needs O(n) memory instead of a dense ``[n, m]`` matrix.
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np


def sketch_params(in_dim: int, out_dim: int, seed: int, salt: str) -> tuple[np.ndarray, np.ndarray]:
  """Count-sketch hash ``[in_dim] int32`` in [0, out_dim) and signs ``[in_dim] ±1`` float32.

  Derived from ``seed`` and ``salt`` (e.g. ``"s256/relu3_1"``) with NumPy's
  PCG64 seeded through SHA-256, so they are identical on every platform.
  """
  digest = hashlib.sha256(f"{seed}/{salt}".encode()).digest()
  rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "little")))
  buckets = rng.integers(0, out_dim, size=in_dim, dtype=np.int64).astype(np.int32)
  signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=in_dim)
  return buckets, signs


def count_sketch(x: jax.Array, buckets: np.ndarray, signs: np.ndarray, out_dim: int) -> jax.Array:
  """Sketches each row of ``x`` ``[B, in_dim]`` to ``[B, out_dim]`` (``sketch_params`` output)."""
  return jax.vmap(lambda row: jax.ops.segment_sum(row * signs, buckets, num_segments=out_dim))(x)
