"""XLA:CPU settings that the stylization network needs to run at full speed.

``use_fast_cpu_convs()`` appends ``--xla_cpu_experimental_ynn_fusion_type=``
(an empty list of YNN fusion types) to ``XLA_FLAGS``. With this jaxlib the
convolutions of the stylizer (a 9x9 stem from 3 channels, a 9x9 head to 3
channels, decoder convs that halve the channels) then run several times faster
on CPU; the measurements are in BUILD_NOTES.md ("Stylization network"). Results
are the same up to float summation order.

Contract: XLA reads ``XLA_FLAGS`` when it creates its CPU backend, i.e. at the
first JAX computation or device query of the process. Call this before that
(the experiments call it at the top of ``main``); called later it changes
nothing for this process and returns False. A user who already set the flag
(any value) in ``XLA_FLAGS`` keeps their value.
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def _backend_started() -> bool:
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  except ImportError:  # pragma: no cover - jax not installed
    return False
  return bool(getattr(xla_bridge, "_backends", {}))


def use_fast_cpu_convs() -> bool:
  """Adds the fast-convolution flag to ``XLA_FLAGS``; True if it will take effect in this process."""
  current = os.environ.get("XLA_FLAGS", "")
  if FLAG in current:
    return not _backend_started()
  if _backend_started():
    return False
  os.environ["XLA_FLAGS"] = (current + " " + FLAG + "=").strip()
  return True
