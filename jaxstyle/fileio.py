"""Atomic file writes and file hashing (the one place for both).

``atomic_open`` is used by every write whose half-written result would hurt:
config/metrics rewrites, saved images, converted VGG weights, style indexes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
  """Opens a temporary file beside ``path``; on success it is fsynced and renamed over ``path``.

  If the ``with`` body raises, the temporary file is removed and ``path`` is
  untouched, so a half-written file never replaces a good one. The temporary
  name is hidden (``.<name>.<random>.tmp``) and created with mode 0666 & umask.
  Missing parent directories are created.
  """
  directory, name = os.path.split(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    try:
      os.remove(tmp)
    except OSError:
      pass
    raise


def file_sha256(path: str, block: int = 1 << 20) -> str:
  """Hex SHA-256 of a file's bytes, read in ``block``-sized chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(block):
      h.update(chunk)
  return h.hexdigest()


def atomic_write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` atomically (see ``atomic_open``)."""
  with atomic_open(path, "w") as f:
    f.write(text)
