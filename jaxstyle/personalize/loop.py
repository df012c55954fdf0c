"""The choice loop and its front ends: terminal (contact sheets + stdin), replay (JSONL), web (``web.py``).

Contract:

* ``run_loop(session, render, frontend, rounds, on_round)``: for up to
  ``rounds`` rounds, ``render(session.candidates)`` makes the K stylized
  photos ([K, H, W, 3]), the front end returns the pick, the session records
  it, and ``on_round(record)`` is called at once (the CLI saves the profile
  there, so an interrupted session keeps every round done). ``record`` =
  ``{"round": n, "candidates": [K][d], "choice": i or None, "estimate": [d],
  "time": ISO-8601}``. Returns the number of rounds done.
* A front end's ``ask(view) -> int | None | QUIT``: a 0-based candidate
  index, ``None`` for "none of these" (recorded as keeping candidate 0, the
  current estimate), or ``QUIT`` to stop early. Candidate 0 is shown as
  "current". ``close()`` releases what it holds.
* ``ReplayFrontend(path)``: picks from a JSONL file, one object per round,
  ``{"choice": k}`` with ``k`` as a person sees it: 1..K (1 = current),
  ``0``/``null``/``"none"`` = none of these, ``"quit"`` = stop; extra keys are
  ignored. When the lines run out the session stops. A malformed line raises
  ``ConfigError`` naming the file and line.
* ``TerminalFrontend(sheet_dir)``: writes ``round_NN.png`` (a labelled
  contact sheet) per round and reads the pick from standard input (EOF
  stops the session).
* ``contact_sheet(images, labels)``: the candidates side by side, a caption
  under each.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
from typing import Callable, TextIO

import numpy as np

from jaxstyle import images as imlib
from jaxstyle.errors import ConfigError

QUIT = "quit"
_NONE_WORDS = ("0", "n", "none", "")


@dataclasses.dataclass
class RoundView:
  """What a front end shows in one round."""
  index: int                # 1-based round number
  total: int                # rounds planned
  candidates: np.ndarray    # [K, H, W, 3] stylized photos; [0] is the current estimate


def _caption(width: int, text: str, height: int = 18) -> np.ndarray:
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top

  im = Image.new("RGB", (width, height), (255, 255, 255))
  ImageDraw.Draw(im).text((4, 3), text, fill=(0, 0, 0))
  return np.asarray(im, np.float32) / 255.0


def contact_sheet(candidates: np.ndarray, labels: list[str], pad: int = 4) -> np.ndarray:
  """[H + caption, K·W + pads, 3]: each candidate above its label (see the module contract)."""
  cells = [np.concatenate([im, _caption(im.shape[1], lab)]) for im, lab in zip(candidates, labels)]
  return imlib.side_by_side(cells, pad=pad)


def labels_for(k: int) -> list[str]:
  """``["1 (current)", "2", ...]``: candidates as a person numbers them."""
  return ["1 (current)"] + [str(i) for i in range(2, k + 1)]


def parse_choice(value, k: int, where: str):
  """A person's pick (1..K, 0/None/'none', 'quit') -> 0-based index, None or QUIT; ConfigError if bad."""
  if isinstance(value, str):
    v = value.strip().lower()
    if v in ("q", "quit"):
      return QUIT
    if v in _NONE_WORDS:
      return None
    try:
      value = int(v)
    except ValueError:
      raise ConfigError(f"{where}: {value!r} is not a pick; give 1..{k}, 0 or 'none' for none of "
                        "these, or 'quit'") from None
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= k:
    raise ConfigError(f"{where}: {value!r} is not a pick; give 1..{k}, 0 or 'none' for none of "
                      "these, or 'quit'")
  return None if value == 0 else value - 1


class ReplayFrontend:
  """Picks replayed from a JSONL file (see the module contract)."""

  def __init__(self, path: str, k: int):
    self.path, self.k = path, k
    try:
      with open(path, encoding="utf-8") as f:
        self._lines = [(i + 1, line) for i, line in enumerate(f) if line.strip()]
    except OSError as e:
      raise ConfigError(f"--choices {path}: cannot read it ({e.strerror or e}); pass a JSONL file "
                        'of picks, one {"choice": k} per line') from None
    except UnicodeDecodeError:
      raise ConfigError(f"--choices {path}: not UTF-8 text; pass a JSONL file of picks") from None
    self._next = 0

  def ask(self, view: RoundView):
    del view
    if self._next >= len(self._lines):
      return QUIT
    lineno, line = self._lines[self._next]
    self._next += 1
    where = f"--choices {self.path} line {lineno}"
    try:
      obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
      raise ConfigError(f"{where}: not JSON; write one object per line, e.g. "
                        '{"choice": 2}') from None
    if not isinstance(obj, dict) or "choice" not in obj:
      raise ConfigError(f'{where}: needs an object with a "choice" key, e.g. {{"choice": 2}}')
    return parse_choice(obj["choice"], self.k, where)

  def close(self):
    pass


class TerminalFrontend:
  """Contact sheet PNG per round, pick read from a text stream (see the module contract)."""

  def __init__(self, sheet_dir: str, stdin: TextIO | None = None, stdout: TextIO | None = None):
    self.sheet_dir = sheet_dir
    self.stdin = stdin or sys.stdin
    self.stdout = stdout or sys.stdout

  def ask(self, view: RoundView):
    k = view.candidates.shape[0]
    path = os.path.join(self.sheet_dir, f"round_{view.index:02d}.png")
    imlib.save_image(path, contact_sheet(view.candidates, labels_for(k)))
    while True:
      self.stdout.write(f"round {view.index}/{view.total}: look at {path}\n"
                        f"  which do you prefer? 1-{k} (1 = your current style), n = none of "
                        "these, q = stop and save: ")
      self.stdout.flush()
      line = self.stdin.readline()
      if not line:  # EOF
        return QUIT
      try:
        return parse_choice(line, k, "your answer")
      except ConfigError as e:
        self.stdout.write(f"  {e}\n")

  def close(self):
    pass


def run_loop(session, render: Callable[[np.ndarray], np.ndarray], frontend, rounds: int,
             on_round: Callable[[dict], None]) -> int:
  """Runs up to ``rounds`` rounds (see the module contract); returns the rounds done."""
  done = 0
  for i in range(rounds):
    shown = session.candidates.copy()
    view = RoundView(index=session.round + 1, total=session.round + rounds - i,
                     candidates=np.asarray(render(shown)))
    answer = frontend.ask(view)
    if answer == QUIT:
      break
    estimate = session.record(answer)
    on_round({"round": session.round, "candidates": shown.tolist(), "choice": answer,
              "estimate": estimate.tolist(),
              "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    done += 1
  return done
