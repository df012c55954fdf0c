"""The Gatys loss: content, style (Gram) and total-variation terms of one image.

``Objective(preprocessing, config)`` evaluates ``α·L_c + β·L_s + γ·L_tv`` of an
image batch ``[1, H, W, 3]`` (float RGB in [0, 1]) against fixed targets:

* ``L_c = Σ_l w_l · mean(½ (F_l(X) − F_l(C))²)`` (content loss per feature
  element, so α does not depend on the image size);
* ``L_s = Σ_l w_l · 1/(4N_l²) ‖Ĝ_l(X) − Ĝ_l(S)‖²`` (``losses.style_loss``,
  position-averaged Grams, ``config.normalization``);
* ``L_tv = mean over pixels of Σ_c (Δx² + Δy²)`` (squared TV per pixel).

``targets`` computes the content features and the blended target Grams
(float32); ``parts`` returns the unweighted parts and the weighted total as
float32 scalars. Both are pure (VGG variables and targets are arguments), so
they can be jitted.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxstyle import losses
from jaxstyle import vgg
from jaxstyle.optimize.config import DTYPES, StylizeConfig

Array = jax.Array

# The loss terms in words, recorded in config.json by the experiments.
LOSS_TERMS = {
    "content_loss": "sum_l w_l * mean(0.5 * (F_l(X) - F_l(C))^2)",
    "style_loss": "sum_l w_l * losses.style_layer_loss(normalization)",
    "tv_loss": "mean over pixels of sum_c (dx^2 + dy^2)",
    "total": "alpha * content_loss + beta * style_loss + gamma * tv_loss",
}


class Objective:
  """Loss of an image batch ``[1, H, W, 3]`` against fixed targets (see the module docstring)."""

  def __init__(self, preprocessing: str, config: StylizeConfig):
    self.config = config
    self.model = vgg.VGG19(preprocessing=preprocessing, pooling=config.pooling,
                              dtype=DTYPES[config.dtype])
    self.layers = config.layers()
    self.content_weights = dict(config.content_layers) if config.alpha > 0 else {}
    self.style_weights = dict(config.style_layers)

  def features(self, variables, x: Array) -> dict[str, Array]:
    return self.model.apply(variables, x, self.layers)

  def targets(self, variables, content: Array | None, styles: Sequence[Array],
              blend: Sequence[float]) -> dict:
    """Content features and blended target Grams (float32)."""
    style_feats = []
    for s in styles:
      f = self.model.apply(variables, s[None], tuple(self.style_weights))
      style_feats.append(f)
    grams = losses.style_targets(style_feats, blend)
    cfeats = {}
    if self.content_weights:
      f = self.features(variables, content[None])
      cfeats = {k: f[k].astype(jnp.float32) for k in self.content_weights}
    return {"content": cfeats, "grams": grams}

  def parts(self, variables, x: Array, targets: dict) -> dict[str, Array]:
    """Unweighted loss parts (scalars) and the weighted total."""
    feats = self.features(variables, x)
    lc = jnp.float32(0.0)
    for k, w in self.content_weights.items():
      f = feats[k].astype(jnp.float32)
      lc = lc + w * losses.content_loss(f, targets["content"][k])[0] / (f.size // f.shape[0])
    ls = losses.style_loss(feats, targets["grams"], self.style_weights,
                           self.config.normalization)[0]
    ltv = jnp.float32(0.0)
    if self.config.gamma:
      ltv = losses.total_variation_loss(x)[0] / (x.shape[1] * x.shape[2])
    c = self.config
    total = c.alpha * lc + c.beta * ls + c.gamma * ltv
    return {"loss": total, "content": lc, "style": ls, "tv": ltv}
