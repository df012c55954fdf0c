"""Download of torchvision's VGG-19 weights into the jaxstyle cache.

``download(url, dest)`` fetches the ``.pth`` into a temporary file beside
``dest``, checks the SHA-256 prefix carried by its file name (torchvision's
convention, e.g. ``vgg19-dcbb9e9d.pth``), converts it with the safe reader and
writes the canonical ``.npz`` atomically (default
``~/.cache/jaxstyle/vgg19.npz``); only the ``.npz`` is kept. A failed
download, a name without a checksum or a mismatch raises ``WeightsError`` and
leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tempfile
import urllib.request
from typing import BinaryIO, Callable

from jaxstyle import fileio
from jaxstyle.errors import WeightsError
from jaxstyle.vgg.weights import CACHE_DIR, CACHE_FILE, load_pth, save_weights

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def _default_fetch(url: str, out: BinaryIO, progress: bool) -> None:
  """Streams ``url`` into ``out`` with a tqdm progress bar on stderr."""
  from tqdm import tqdm
  with urllib.request.urlopen(url, timeout=60) as response:
    total = response.headers.get("Content-Length")
    with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
              desc=os.path.basename(url), disable=not progress, file=sys.stderr) as bar:
      while chunk := response.read(1 << 20):
        out.write(chunk)
        bar.update(len(chunk))


def download(url: str = TORCHVISION_URL, dest: str | None = None, *,
             fetch: Callable[[str, BinaryIO, bool], None] | None = None,
             progress: bool = True, force: bool = False) -> str:
  """Downloads torchvision VGG-19 weights, verifies, converts and caches them.

  The file name carries the first hex digits of the file's SHA-256
  (torchvision's convention, e.g. ``vgg19-dcbb9e9d.pth``); a mismatch is an
  error and nothing is written. The ``.pth`` is parsed without executing
  pickled code and only the converted ``.npz`` is kept.

  Args:
    url: where to fetch the ``.pth`` (``file://`` URLs work).
    dest: output ``.npz``; default ``~/.cache/jaxstyle/vgg19.npz``.
    fetch: ``fetch(url, fileobj, progress)`` writes the bytes (for tests).
    progress: show a progress bar.
    force: overwrite an existing ``dest``.

  Returns:
    The path of the cached ``.npz``.
  """
  dest = os.path.expanduser(dest or os.path.join(CACHE_DIR, CACHE_FILE))
  if os.path.exists(dest) and not force:
    return dest
  name = os.path.basename(urllib.request.urlparse(url).path)
  m = re.search(r"-([0-9a-f]{8,64})\.", name)
  if not m:
    raise WeightsError(f"{url}: the file name carries no SHA-256 prefix (like vgg19-dcbb9e9d.pth); "
                       "refusing to use an unverifiable download")
  expected = m.group(1)
  directory = os.path.dirname(os.path.abspath(dest))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".pth", dir=directory)
  try:
    with os.fdopen(fd, "wb") as out:
      try:
        (fetch or _default_fetch)(url, out, progress)
      except OSError as e:
        raise WeightsError(f"{url}: download failed ({e}); check the connection, or fetch the file "
                           "yourself and run `python -m jaxstyle.vgg convert FILE.pth DEST.npz`") from None
    digest = fileio.file_sha256(tmp)
    if not digest.startswith(expected):
      raise WeightsError(f"{url}: checksum mismatch (sha256 {digest[:len(expected)]}…, "
                         f"expected {expected}…); the download is corrupt or not the official file")
    weights = load_pth(tmp, preprocessing="torch")
    weights = dataclasses.replace(weights, source=url)
    save_weights(weights, dest)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest
