"""Gatys style transfer and texture synthesis by image optimisation.

* ``config``: ``StylizeConfig`` (every setting, with its help and checks),
  the layer sets and the allowed choices.
* ``objective``: ``Objective``, the content + style + TV loss (``LOSS_TERMS``).
* ``gatys``: ``stylize``, ``synthesize``, ``evaluate``, the optimisers
  (``make_stepper``: Adam, L-BFGS) and ``memory_estimate`` (peak bytes,
  conservative).
* ``lbfgs``: L-BFGS as pure jitted pieces with a line search in Python.
"""

# The colour helpers live in jaxstyle.images.color; re-exported for existing callers.
from jaxstyle.images.color import (RGB_TO_YIQ, YIQ_TO_RGB, luminance, match_color,
                                   match_luminance, rgb_to_yiq, yiq_to_rgb)
from jaxstyle.optimize.config import (CLASSIC_CONTENT_LAYERS, CLASSIC_STYLE_LAYERS,
                                      DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, DTYPES, INITS,
                                      MIN_SIDE, OPTIMIZERS, PARAMETRIZATIONS, PRESERVE_COLOR,
                                      SYNTHESIS, UPSAMPLE, StylizeConfig, format_layers,
                                      parse_layers, synthesis_config)
from jaxstyle.optimize.gatys import (OptimizationError, Result, Stepper, evaluate, make_stepper,
                                     memory_estimate, scale_sizes, stylize, synthesize)
from jaxstyle.optimize.objective import LOSS_TERMS, Objective

_Objective = Objective  # the old name (nothing in the tree uses it any more)

__all__ = [
    "CLASSIC_CONTENT_LAYERS", "CLASSIC_STYLE_LAYERS", "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS", "DTYPES", "INITS", "LOSS_TERMS", "MIN_SIDE", "OPTIMIZERS",
    "PARAMETRIZATIONS", "PRESERVE_COLOR", "RGB_TO_YIQ", "SYNTHESIS", "UPSAMPLE", "YIQ_TO_RGB",
    "Objective", "OptimizationError", "Result", "Stepper", "StylizeConfig", "evaluate",
    "format_layers", "luminance", "make_stepper", "match_color", "match_luminance",
    "memory_estimate", "parse_layers",
    "rgb_to_yiq", "scale_sizes", "stylize", "synthesis_config", "synthesize", "yiq_to_rgb",
]
