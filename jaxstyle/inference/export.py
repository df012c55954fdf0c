"""A trained generator as a ``jax.export`` artifact that runs without jaxstyle.

Contract:

* ``export_stylizer(config, g_params, path, styles=None)`` writes ``path``: the
  serialized ``jax.export.Exported`` of ``(images, latent) -> images`` with the
  parameters baked in as constants. ``images``: float32 [B, H, W, 3] in
  [0, 1] with symbolic B, H, W (constraints ``H, W >= min_image_size``);
  ``latent``: float32 [B, latent_dim]. The output is float32 [B, H, W, 3].
  Platforms: the current backend's (``platforms`` to choose others).
* Beside it, ``path + ".json"`` (written atomically, like the artifact) holds
  the format version, latent_dim, the minimum size and, when ``styles`` is
  given (``{name: latent [D]}``), the bank latents by name, so that a program
  with only JAX installed can pick a style.
* ``load_exported(path) -> (call, meta)``: ``call(images, latent)`` and the
  JSON sidecar. What another program needs is only::

    exp = jax.export.deserialize(bytearray(open(path, "rb").read()))
    out = exp.call(images, latent)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import CheckpointError
from jaxstyle.fileio import atomic_open, atomic_write_text
from jaxstyle.nets import stylizer as st

FORMAT = "jaxstyle.stylizer.jaxexport/1"


def export_stylizer(config: st.StylizerConfig, g_params: dict, path: str, *,
                    styles: Mapping[str, np.ndarray] | None = None,
                    platforms: Sequence[str] | None = None) -> dict:
  """Writes the artifact and its JSON sidecar (see the module contract); returns the sidecar."""
  params = jax.tree.map(jnp.asarray, g_params)
  min_size = st.min_image_size(config)

  def fn(images, latent):
    return st.apply_stylizer(config, params, images, latent)

  b, h, w = jax.export.symbolic_shape("b, h, w", constraints=(f"h >= {min_size}", f"w >= {min_size}"))
  args = (jax.ShapeDtypeStruct((b, h, w, 3), jnp.float32),
          jax.ShapeDtypeStruct((b, config.latent_dim), jnp.float32))
  exported = jax.export.export(jax.jit(fn), platforms=platforms)(*args)
  with atomic_open(path, "wb") as f:
    f.write(exported.serialize())
  meta = {"format": FORMAT, "latent_dim": config.latent_dim, "min_image_size": min_size,
          "platforms": list(exported.platforms), "inputs": ["images f32[b,h,w,3] in [0,1]",
                                                          f"latent f32[b,{config.latent_dim}]"],
          "styles": {k: np.asarray(v, np.float32).tolist() for k, v in (styles or {}).items()}}
  atomic_write_text(path + ".json", json.dumps(meta, indent=1) + "\n")
  return meta


def load_exported(path: str) -> tuple[Callable, dict]:
  """``(call(images, latent) -> images, sidecar)`` of an artifact; ``CheckpointError`` if unreadable."""
  try:
    with open(path, "rb") as f:
      exported = jax.export.deserialize(bytearray(f.read()))
    with open(path + ".json") as f:
      meta = json.load(f)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f"{path}: not a readable stylizer export ({type(e).__name__}: {e}); "
                          "write one with `experiments/stylize.py export`") from None
  return exported.call, meta
