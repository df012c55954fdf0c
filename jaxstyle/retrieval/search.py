"""Exact cosine search over descriptors: streamed top-k and leave-one-out evaluation.

Rows are L2-normalised descriptors, so cosine similarity is a dot product.
``topk_search`` computes one matrix product per chunk of the database with
``jax.lax.top_k`` and merges per-chunk top-k, so its extra memory is
``O(Q · chunk + chunk · d)`` whatever the database size.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import RetrievalError


@jax.jit
def _chunk_topk_merge(queries, chunk, n_valid, offset, best_scores, best_index):
  scores = queries @ chunk.T  # [Q, chunk]
  col = jnp.arange(chunk.shape[0])
  scores = jnp.where(col[None, :] < n_valid, scores, -jnp.inf)
  k = best_scores.shape[1]
  kc = min(k, chunk.shape[0])
  s, i = jax.lax.top_k(scores, kc)
  cand_s = jnp.concatenate([best_scores, s], axis=1)
  cand_i = jnp.concatenate([best_index, (i + offset).astype(best_index.dtype)], axis=1)
  top_s, pos = jax.lax.top_k(cand_s, k)
  return top_s, jnp.take_along_axis(cand_i, pos, axis=1)


def topk_search(queries: np.ndarray, database: np.ndarray, k: int,
                chunk_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
  """Exact top-k by inner product (cosine for L2-normalised rows).

  Args:
    queries: ``[Q, d]`` float32.
    database: ``[N, d]`` float32 (NumPy, host memory; may be a memmap).
    k: results per query (clamped to N).
    chunk_size: database rows per matrix product; peak extra memory is about
      ``chunk_size · (d + Q) · 4`` bytes.

  Returns:
    ``(scores [Q, k] float32, indices [Q, k] int64)``, best first; ties go to
    the lower index.
  """
  queries = np.asarray(queries, np.float32)
  if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
    raise RetrievalError(f"query descriptors {queries.shape} do not match the index "
                         f"descriptors {database.shape}")
  n = database.shape[0]
  k = int(min(k, n))
  q = queries.shape[0]
  if k <= 0:
    return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
  chunk_size = int(min(chunk_size, max(n, k)))
  best_s = jnp.full((q, k), -jnp.inf, jnp.float32)
  best_i = jnp.full((q, k), -1, jnp.int32)
  qj = jnp.asarray(queries)
  for start in range(0, n, chunk_size):
    chunk = np.asarray(database[start:start + chunk_size], np.float32)
    m = chunk.shape[0]
    if m < chunk_size:
      chunk = np.concatenate([chunk, np.zeros((chunk_size - m, chunk.shape[1]), np.float32)])
    best_s, best_i = _chunk_topk_merge(qj, jnp.asarray(chunk), m, start, best_s, best_i)
    best_s.block_until_ready()  # one chunk in flight at a time: bounded memory
  return np.asarray(best_s), np.asarray(best_i).astype(np.int64)


# ----------------------------------------------------------------------------
# Leave-one-out evaluation.


def leave_one_out(descriptors: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
  """P@1, P@5 and mAP of leave-one-out cosine retrieval (float64 NumPy).

  Every image queries all others; relevant = same label. Ties in similarity
  are broken by index (stable sort).
  """
  x = np.asarray(descriptors, np.float64)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
  labels = np.asarray(labels)
  n = x.shape[0]
  if n < 2:
    raise RetrievalError("leave-one-out evaluation needs at least 2 images")
  sim = x @ x.T
  np.fill_diagonal(sim, -np.inf)
  order = np.argsort(-sim, axis=1, kind="stable")[:, :n - 1]
  rel = labels[order] == labels[:, None]
  nrel = rel.sum(axis=1)
  ranks = np.arange(1, n)
  ap = np.where(nrel > 0, (rel * np.cumsum(rel, axis=1) / ranks).sum(axis=1) / np.maximum(nrel, 1),
                0.0)
  k5 = min(5, n - 1)
  return {"p_at_1": float(rel[:, 0].mean()), "p_at_5": float(rel[:, :k5].mean()),
          "map": float(ap.mean())}
