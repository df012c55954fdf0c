"""Atomic file writes, output-path checks and file hashing (the one place for each).

``atomic_open`` is used by every write whose half-written result would hurt:
config/metrics rewrites, saved images, converted VGG weights, style indexes.
``check_output_file`` / ``check_output_dir`` are what a command runs on its
output flags before any work: a folder where a file is wanted (or a file where
a folder is), a file in the way of a folder to create, or a folder it cannot
write in is a ``ConfigError`` naming the flag and the path, instead of an
``OSError`` at the end of the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from typing import IO, Iterator

from jaxstyle.errors import ConfigError


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


def _nearest_existing(path: str) -> str:
  """``path`` or its nearest ancestor that exists."""
  path = os.path.abspath(path)
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return path


def _check_folders(path: str, start: str, name: str) -> None:
  """The folders of ``path`` (from ``start`` up) are folders (or can be made) and writable."""
  existing = _nearest_existing(start)
  if not os.path.isdir(existing):
    raise ConfigError(f"{name}={path}: {existing} is a file, not a folder; choose a path whose "
                      "folders are folders (or move that file)")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ConfigError(f"{name}={path}: cannot write in {existing} (permission denied); choose a "
                      "folder you can write")


def check_output_file(path: str, name: str) -> None:
  """Refuses ``path`` as a file to write (``name``: the flag, e.g. ``--out``, for the message).

  Raises:
    ConfigError: ``path`` is a folder, a part of its folder is a file, or the
      folder is not writable. Missing folders are fine (writers create them).
  """
  if os.path.isdir(path):
    raise ConfigError(f"{name}={path} is a folder; give a file name (inside it or elsewhere)")
  _check_folders(path, os.path.dirname(os.path.abspath(path)), name)


def check_output_dir(path: str, name: str) -> None:
  """Refuses ``path`` as a folder to write into (created if missing); see ``check_output_file``."""
  if os.path.lexists(path) and not os.path.isdir(path):
    raise ConfigError(f"{name}={path} is an existing file, not a folder; give a folder (it is "
                      "created if missing)")
  _check_folders(path, path, name)
