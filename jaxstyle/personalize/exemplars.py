"""A profile's style as images: its stylized outputs on photos (what ``generate.py --profile`` matches).

A ``.style`` profile is a latent of one stylizer, not an image, so tools that
need style *images* (Gram-matching synthesis from noise) use its
*exemplars*: the stylizer's outputs with the profile's latent (at the
profile's strength) on a few photos.

Contract:

* ``recorded_checkpoint(profile)``: the stylizer run directory the profile
  records (``provenance.checkpoint.path``) if it exists on this machine, else
  ``None``.
* ``default_photo_dir(model)``: the run's held-out photo folder
  (``config.json``: ``eval_dir``), else its training photos (``content_dir``),
  whichever exists on this machine; ``None`` if neither does.
* ``render(model, latent, photos, strength=1.0)``: float32 ``[N, H, W, 3]``
  outputs of ``model`` on ``photos`` ``[N, H, W, 3]`` (RGB in [0, 1]) with
  ``with_strength(latent, strength)``; one image at a time, so any sizes the
  stylizer takes work.
* ``profile_exemplars(model, profile, photos, path="")``: ``render`` with the
  profile's latent and default strength, after ``check_profile_for`` (a
  profile of another checkpoint raises ``ProfileError``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxstyle.nets import style_encoder as se
from jaxstyle.personalize.profile import StyleProfile, check_profile_for


def recorded_checkpoint(profile: StyleProfile) -> str | None:
  """The profile's recorded stylizer run, if that folder exists here."""
  path = (profile.provenance.get("checkpoint") or {}).get("path")
  return path if isinstance(path, str) and os.path.isdir(path) else None


def default_photo_dir(model: Any) -> str | None:
  """The run's held-out (else training) photo folder, if it exists here (see the contract)."""
  try:
    with open(os.path.join(model.path, "config.json")) as f:
      config = json.load(f).get("config") or {}
  except (OSError, ValueError, AttributeError, RecursionError):  # unreadable or damaged
    return None
  if not isinstance(config, dict):
    return None
  for key in ("eval_dir", "content_dir"):
    folder = config.get(key)
    if isinstance(folder, str) and os.path.isdir(folder):
      return folder
  return None


def render(model: Any, latent, photos, strength: float = 1.0) -> np.ndarray:
  """Outputs ``[N, H, W, 3]`` of ``model`` on ``photos`` with the latent at ``strength``."""
  z = se.with_strength(jnp.asarray(latent, jnp.float32).reshape(1, -1), strength)
  return np.stack([np.asarray(model(model.params, jnp.asarray(p, jnp.float32)[None], z))[0]
                   for p in photos]).astype(np.float32)


def profile_exemplars(model: Any, profile: StyleProfile, photos, path: str = "") -> np.ndarray:
  """``render`` with ``profile``'s latent and strength (checked against ``model`` first)."""
  check_profile_for(profile, latent_dim=model.latent_dim, fingerprint=model.fingerprint, path=path)
  return render(model, profile.latent, photos, profile.strength)
