"""jaxstyle: personalized image style learning and transfer in JAX/Flax.

The package is a library of pure functions and Flax modules::

  from jaxstyle import vgg, losses
  weights = vgg.load_weights("vgg19.npz")            # carries its preprocessing
  feats = vgg.extract(weights, images, ["relu1_1", "relu2_1", "relu3_1"])
  grams = losses.gram_matrix(feats["relu2_1"])         # [B, C, C], f32

Submodules are imported lazily (``jaxstyle.optimize`` etc. load on first use),
so ``import jaxstyle`` stays cheap. The most used functions are re-exported
here under their own names.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "checkpoint", "data", "errors", "images", "losses", "metrics", "optimize", "parallel",
    "retrieval", "rundir", "train", "vgg", "nets", "inference", "personalize",
)

# name -> (submodule, attribute)
_EXPORTS = {
    "JaxstyleError": ("errors", "JaxstyleError"),
    "gram_matrix": ("losses", "gram_matrix"),
    "content_loss": ("losses", "content_loss"),
    "style_loss": ("losses", "style_loss"),
    "style_targets": ("losses", "style_targets"),
    "total_variation_loss": ("losses", "total_variation_loss"),
    "perceptual_loss": ("losses", "perceptual_loss"),
    "gan_d_loss": ("losses", "gan_d_loss"),
    "gan_g_loss": ("losses", "gan_g_loss"),
    "VGG19": ("vgg", "VGG19"),
    "load_vgg_weights": ("vgg", "load_weights"),
    "extract_features": ("vgg", "extract"),
    "VGGWeights": ("vgg", "VGGWeights"),
    "WeightsError": ("vgg", "WeightsError"),
    "load_image": ("images", "load_image"),
    "save_image": ("images", "save_image"),
    "ImageError": ("images", "ImageError"),
    "StyleMod": ("nets.stylemod", "StyleMod"),
    "stylize": ("optimize", "stylize"),
    "synthesize": ("optimize", "synthesize"),
    "StylizeConfig": ("optimize", "StylizeConfig"),
    "topk_search": ("retrieval", "topk_search"),
    "build_index": ("retrieval", "build_index"),
    "load_index": ("retrieval", "load_index"),
    "load_stylizer": ("inference", "load_stylizer"),
    "load_profile": ("personalize.profile", "load_profile"),
    "save_profile": ("personalize.profile", "save_profile"),
}

__all__ = sorted(set(_SUBMODULES) | set(_EXPORTS))


def __getattr__(name: str):
  if name in _EXPORTS:
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(f"jaxstyle.{module}"), attr)
  elif name in _SUBMODULES:
    value = importlib.import_module(f"jaxstyle.{name}")
  else:
    raise AttributeError(f"module 'jaxstyle' has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__():
  return __all__
