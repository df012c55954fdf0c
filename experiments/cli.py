"""Entry point of the one command-line style for the experiments/ scripts.

Puts the repository on ``sys.path`` (so scripts run from a source checkout
without install) and re-exports ``jaxstyle.cli``; see that module::

  import cli
  cli.define_config_flags(Config)
  def main(argv): cfg = cli.config_from_flags(Config); ...
  if __name__ == "__main__":
    cli.run(main)
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from jaxstyle.cli import *  # noqa: E402,F401,F403
from jaxstyle.cli import FLAGS, Subcommand, UsageError, flags  # noqa: E402,F401
