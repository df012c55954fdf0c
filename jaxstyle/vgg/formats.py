"""Detection of VGG weight file formats from their content (not their name).

``sniff_format(path)`` returns one of ``NPZ`` (a zip without ``data.pkl``),
``TORCH_ZIP`` (``torch.save``'s zip format), ``TORCH_LEGACY`` (a raw pickle:
torch's pre-1.6 format) or ``HDF5`` (Keras); anything else, a damaged zip or
an unreadable file raises ``WeightsError``.
"""

from __future__ import annotations

import zipfile

from jaxstyle.errors import WeightsError

NPZ, TORCH_ZIP, TORCH_LEGACY, HDF5 = "npz", "torch-zip", "torch-legacy", "hdf5"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sniff_format(path: str) -> str:
  """``npz``, ``torch-zip``, ``torch-legacy`` (raw pickle) or ``hdf5``, by content."""
  try:
    with open(path, "rb") as f:
      head = f.read(8)
  except OSError as e:
    raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
  if head.startswith(_HDF5_MAGIC):
    return HDF5
  if head.startswith(b"PK"):
    try:
      with zipfile.ZipFile(path) as z:
        names = z.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
      # ValueError: undecodable names; NotImplementedError: "zip file version 10.8"
      raise WeightsError(f"{path}: looks like a zip archive but is damaged ({type(e).__name__}: "
                         f"{e}); re-download or re-convert it") from None
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
      return TORCH_ZIP
    return NPZ
  if head[:1] == b"\x80":  # pickle protocol >= 2: torch's pre-1.6 format
    return TORCH_LEGACY
  raise WeightsError(f"{path}: not a VGG weight file this tool reads (expected a jaxstyle .npz, "
                     "a PyTorch .pth state dict or a Keras .h5)")
