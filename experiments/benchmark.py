"""Seeded benchmarks; each prints one JSON object.

  python experiments/benchmark.py vgg     # VGG-19 forward / forward+backward vs matmul GFLOP/s
  python experiments/benchmark.py gatys   # one Gatys optimisation step, jaxstyle vs PyTorch
  python experiments/benchmark.py cgan    # cGAN train steps/s, jaxstyle vs PyTorch
  python experiments/benchmark.py retrieval  # top-k search time/memory vs library size

Each subcommand lives in ``experiments/bench_<name>.py`` as ``run(argv) -> dict``
(``argv``: the remaining command-line arguments, parsed by that module).
Record results in BUILD_NOTES.md with date, machine and command.
"""

import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BENCHMARKS = ("vgg", "gatys", "cgan", "retrieval")


def main(argv):
  if len(argv) < 2 or argv[1] in ("-h", "--help") or argv[1] not in BENCHMARKS:
    print(__doc__)
    if len(argv) >= 2 and argv[1] not in ("-h", "--help"):
      sys.stderr.write(f"error: unknown benchmark {argv[1]!r}; choose one of {', '.join(BENCHMARKS)}\n")
      return 2
    return 0 if len(argv) >= 2 else 2
  module = importlib.import_module(f"bench_{argv[1]}")
  result = module.run(argv[2:])
  print(json.dumps(result, indent=2, sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
