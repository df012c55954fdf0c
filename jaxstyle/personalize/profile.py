"""The ``.style`` profile: one user's personal style for one trained stylizer.

A profile holds a style latent, its coordinates in a low-dimensional style
space, the space itself (so the coordinates keep their meaning), a default
strength and provenance. Profiles are shared and passed on command lines, so a
file is never trusted: it holds only numbers and JSON, is read with
``allow_pickle=False``, and any unusable file raises one ``ProfileError``.

File layout: an uncompressed ``.npz`` (``np.savez``) holding only

* ``latent`` [D] float32: the style latent;
* ``coords`` [d] float32, ``space_mean`` [D], ``space_basis`` [D, d]
  (orthonormal columns), ``space_scales`` [d] (> 0), ``space_explained`` [d]
  (in [0, 1]), all float32: present together, or all absent when the profile
  has no style space;
* ``meta`` [bytes] uint8: the UTF-8 bytes of a JSON object (sorted keys)
  ``{"format": "jaxstyle.style", "version": 1, "strength": float in [0, 1],
  "space_source": str, "provenance": {...}}``.

Provenance is a JSON object; every key is optional, and the known ones are
``"checkpoint": {"path", "fingerprint", "step"}`` (the stylizer the latent is
for; ``check_profile_for`` compares the fingerprint), ``"method"`` (how the
latent was made, e.g. ``"encoder_mean"``, ``"gram_fit"``, ``"choices"``),
``"liked": [{"file", "sha256", "score"}]``, ``"rounds": [{...}, ...]`` (one
record per preference round, see ``append_round``), ``"created"`` (ISO time)
and ``"jaxstyle_version"``; the writer (experiments/personalize.py) sets them.

Writes are atomic (``fileio.atomic_open``): a failed write leaves the old file
intact. ``load_profile(save_profile(p))`` equals ``p`` exactly; the bytes are
the same for the same profile except for the zip entries' timestamps, which
``np.savez`` sets to the time of writing.

Errors: an unusable file (missing, not an npz, truncated, pickled objects,
missing or unknown arrays, bad meta, wrong format, newer or bad version, wrong
dtypes/ranks/shapes, non-finite values, bad strength or provenance) or a
profile that does not fit a stylizer raises ``ProfileError``, one line naming
the file, what is wrong and what to do. Programming errors (an inconsistent
``StyleProfile``/``StyleSpace``, bad ``fit_style_space`` inputs) raise
``ValueError``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from jaxstyle.errors import ProfileError  # noqa: F401  (re-exported)
from jaxstyle.fileio import atomic_open

FORMAT = "jaxstyle.style"
FORMAT_VERSION = 1
SUFFIX = ".style"
MAX_BYTES = 256 << 20  # refuse archives that would unpack to more than this

_SPACE_KEYS = ("space_mean", "space_basis", "space_scales", "space_explained")
_KEYS = frozenset(("latent", "coords", "meta") + _SPACE_KEYS)


def _frozen_f32(x, name: str, ndim: int) -> np.ndarray:
  with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: refused below
    a = np.array(np.asarray(x), dtype=np.float32, order="C")  # a private copy
  if a.ndim != ndim:
    raise ValueError(f"{name} must have rank {ndim}, got shape {a.shape}")
  if not np.all(np.isfinite(a)):
    raise ValueError(f"{name} has non-finite values")
  a.setflags(write=False)
  return a


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
  if a is None or b is None:
    return a is b
  return a.shape == b.shape and a.tobytes() == b.tobytes()


@dataclasses.dataclass(frozen=True, eq=False)
class StyleSpace:
  """A low-dimensional style space: PCA of a collection of style latents.

  Arrays are stored as read-only float32 copies. Equality is bit-exact.

  Attributes:
    mean: ``[D]`` mean latent of the collection.
    basis: ``[D, d]`` orthonormal principal directions (columns).
    scales: ``[d]`` std of the collection along each column (> 0).
    explained: ``[d]`` fraction of the collection's variance per column.
    source: free text: what the space was fitted on.
  """

  mean: np.ndarray
  basis: np.ndarray
  scales: np.ndarray
  explained: np.ndarray
  source: str = ""

  def __post_init__(self):
    for name, ndim in (("mean", 1), ("basis", 2), ("scales", 1), ("explained", 1)):
      object.__setattr__(self, name, _frozen_f32(getattr(self, name), f"space {name}", ndim))
    d = self.basis.shape[1]
    if d < 1 or self.mean.shape[0] != self.basis.shape[0] or self.scales.shape != (d,) \
        or self.explained.shape != (d,):
      raise ValueError(f"space shapes do not match: mean {self.mean.shape}, basis "
                       f"{self.basis.shape}, scales {self.scales.shape}, explained "
                       f"{self.explained.shape}")
    if not np.all(self.scales > 0):
      raise ValueError("space scales must be > 0")
    if np.any(self.explained < 0) or np.sum(self.explained, dtype=np.float64) > 1 + 1e-4:
      raise ValueError("space explained fractions must be >= 0 and sum to at most 1")
    gram = self.basis.astype(np.float64).T @ self.basis.astype(np.float64)
    if np.max(np.abs(gram - np.eye(d))) > 1e-3:
      raise ValueError("space basis columns are not orthonormal")
    if not isinstance(self.source, str):
      raise ValueError(f"space source must be a string, got {type(self.source).__name__}")

  @property
  def dim(self) -> int:
    """Number of style-space axes ``d``."""
    return self.basis.shape[1]

  @property
  def latent_dim(self) -> int:
    """Latent size ``D``."""
    return self.basis.shape[0]

  def to_latent(self, coords) -> np.ndarray:
    """Maps coordinates ``[..., d]`` to latents ``[..., D]`` (float32)."""
    c = np.asarray(coords, np.float32)
    if c.shape[-1:] != (self.dim,):
      raise ValueError(f"coords must end in size {self.dim}, got shape {c.shape}")
    return self.mean + (c * self.scales) @ self.basis.T

  def to_coords(self, latents) -> np.ndarray:
    """Maps latents ``[..., D]`` to coordinates ``[..., d]`` (float32)."""
    z = np.asarray(latents, np.float32)
    if z.shape[-1:] != (self.latent_dim,):
      raise ValueError(f"latents must end in size {self.latent_dim}, got shape {z.shape}")
    return ((z - self.mean) @ self.basis) / self.scales

  def __eq__(self, other) -> bool:
    if not isinstance(other, StyleSpace):
      return NotImplemented
    return (self.source == other.source and
            all(_same(getattr(self, k), getattr(other, k))
                for k in ("mean", "basis", "scales", "explained")))


def _check_provenance(provenance) -> dict:
  """Returns the JSON round trip of ``provenance`` (a private deep copy)."""
  if not isinstance(provenance, dict):
    raise ValueError(f"provenance must be a JSON object, got {type(provenance).__name__}")
  try:
    copy = json.loads(json.dumps(provenance, allow_nan=False))
  except (TypeError, ValueError) as e:
    raise ValueError(f"provenance is not JSON-serializable ({e})") from None
  ckpt = copy.get("checkpoint", {})
  if not isinstance(ckpt, dict) or not isinstance(ckpt.get("fingerprint", ""), (str, type(None))):
    raise ValueError("provenance 'checkpoint' must be an object with a string 'fingerprint'")
  for key in ("liked", "rounds"):
    if not isinstance(copy.get(key, []), list):
      raise ValueError(f"provenance {key!r} must be a list")
  return copy


@dataclasses.dataclass(frozen=True, eq=False)
class StyleProfile:
  """A user's style for one stylizer. Immutable (read-only float32 copies); equality is bit-exact.

  Attributes:
    latent: ``[D]`` style latent.
    coords: ``[d]`` coordinates in ``space`` (``None`` without a space);
      ``space.to_coords(latent)`` when a space is given without them.
    space: the style space, or ``None``.
    strength: default stylization strength in [0, 1].
    provenance: JSON object (module docstring), kept as its JSON round trip.
  """

  latent: np.ndarray
  coords: np.ndarray | None = None
  space: StyleSpace | None = None
  strength: float = 1.0
  provenance: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    latent = _frozen_f32(self.latent, "latent", 1)
    if latent.size == 0:
      raise ValueError("latent is empty")
    object.__setattr__(self, "latent", latent)
    if self.space is not None:
      got = getattr(self.space, "latent_dim", type(self.space).__name__)
      if not isinstance(self.space, StyleSpace) or got != latent.size:
        raise ValueError(f"space is for latents of size {got}, the latent has size {latent.size}")
      coords = self.space.to_coords(latent) if self.coords is None else self.coords
      coords = _frozen_f32(coords, "coords", 1)
      if coords.shape != (self.space.dim,):
        raise ValueError(f"coords have size {coords.size} for a {self.space.dim}-d space")
      object.__setattr__(self, "coords", coords)
    elif self.coords is not None:
      raise ValueError("coords need a space")
    s = self.strength
    if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not 0 <= s <= 1:
      raise ValueError(f"strength must be a number in [0, 1], got {s!r}")
    object.__setattr__(self, "strength", float(s))
    object.__setattr__(self, "provenance", _check_provenance(self.provenance))

  @property
  def latent_dim(self) -> int:
    """Latent size ``D``."""
    return self.latent.shape[0]

  def __eq__(self, other) -> bool:
    if not isinstance(other, StyleProfile):
      return NotImplemented
    return (_same(self.latent, other.latent) and _same(self.coords, other.coords) and
            self.space == other.space and self.strength == other.strength and
            self.provenance == other.provenance)


def save_profile(path: str, profile: StyleProfile) -> str:
  """Writes ``profile`` (validated when constructed) to ``path`` atomically; returns ``path``."""
  if not isinstance(profile, StyleProfile):
    raise ValueError(f"expected a StyleProfile, got {type(profile).__name__}")
  space = profile.space
  meta = {"format": FORMAT, "version": FORMAT_VERSION, "strength": profile.strength,
          "space_source": space.source if space is not None else "",
          "provenance": profile.provenance}
  text = json.dumps(meta, sort_keys=True, ensure_ascii=False, allow_nan=False)
  arrays = {"latent": profile.latent}
  if space is not None:
    arrays.update(coords=profile.coords, space_mean=space.mean, space_basis=space.basis,
                  space_scales=space.scales, space_explained=space.explained)
  arrays["meta"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
  with atomic_open(path) as f:
    np.savez(f, allow_pickle=False, **arrays)
  return path


def _one_line(e: BaseException) -> str:
  return " ".join(f"{type(e).__name__}: {e}".split())[:200]


def _read_arrays(path: str, fail) -> dict:
  """Every member of the npz at ``path``, read without ever unpickling."""
  if not os.path.exists(path) or os.path.isdir(path):
    raise fail("no such profile file" if not os.path.isdir(path) else "a directory")
  try:
    with open(path, "rb") as f:
      head = f.read(4)
  except OSError as e:
    raise fail(f"cannot read it ({_one_line(e)})", "check the path and its permissions") from None
  if head != b"PK\x03\x04":  # never let np.load try its pickle fallback
    raise fail("an empty file" if not head else
               "a single .npy array" if head == b"\x93NUM" else "not an .npz archive")
  try:
    data = np.load(path, allow_pickle=False)
  except Exception as e:  # noqa: BLE001 - any zip reader error means "not a profile"
    raise fail(_one_line(e)) from None
  with data:
    if sum(info.file_size for info in data.zip.infolist()) > MAX_BYTES:
      raise fail(f"unpacks to more than {MAX_BYTES >> 20} MiB, far more than a profile")
    arrays = {}
    for key in data.files:
      try:
        arrays[key] = data[key]
      except Exception as e:  # noqa: BLE001 - bad CRC, truncated member, bad header, ...
        if isinstance(e, ValueError) and "allow_pickle" in str(e):
          raise ProfileError(f"{path}: refused: array {key!r} holds pickled Python objects, "
                             "which could run code; do not use this file") from None
        raise fail(f"array {key!r}: {_one_line(e)}") from None
      if not isinstance(arrays[key], np.ndarray):
        raise fail(f"member {key!r} is not a .npy array")
  return arrays


def load_profile(path: str) -> StyleProfile:
  """Reads a profile written by ``save_profile``; never executes code.

  Raises:
    ProfileError: the file is missing or unusable (see the module docstring).
  """
  def fail(why: str, advice: str = "pass a file written by experiments/personalize.py"):
    return ProfileError(f"{path}: not a jaxstyle profile ({why}); {advice}")

  arrays = _read_arrays(path, fail)
  raw = arrays.get("meta")
  if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
    raise fail("'meta' is " + ("missing" if raw is None else "not a uint8 byte array"))
  try:
    meta = json.loads(raw.tobytes().decode("utf-8"))
  except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError, deep nesting
    raise fail(f"meta is not UTF-8 JSON: {_one_line(e)}") from None
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    raise fail(f"meta format {got!r}, expected {FORMAT!r}")
  version = meta.get("version")  # judged first: a newer file may differ in anything else
  if not isinstance(version, bool) and isinstance(version, int) and version > FORMAT_VERSION:
    raise ProfileError(f"{path}: written by a newer jaxstyle (format {version}; this one reads "
                       f"up to {FORMAT_VERSION}); upgrade jaxstyle")
  try:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
      raise ValueError(f"format version {version!r} is not a positive integer")
    unknown = sorted(set(arrays) - _KEYS)
    if unknown or "latent" not in arrays:
      raise ValueError(f"unexpected arrays {unknown}" if unknown else "no 'latent' array")
    present = [k for k in ("coords",) + _SPACE_KEYS if k in arrays]
    if present and len(present) != 1 + len(_SPACE_KEYS):
      raise ValueError(f"incomplete style space (has only {present})")
    for key in ["latent"] + present:
      if not np.issubdtype(arrays[key].dtype, np.floating):
        raise ValueError(f"{key!r} has dtype {arrays[key].dtype}, expected float32")
    space = None if not present else StyleSpace(
        *(arrays[k] for k in _SPACE_KEYS), source=meta.get("space_source", ""))
    return StyleProfile(latent=arrays["latent"], coords=arrays.get("coords"), space=space,
                        strength=meta.get("strength", 1.0), provenance=meta.get("provenance", {}))
  except ValueError as e:
    raise ProfileError(f"{path}: corrupt profile ({' '.join(str(e).split())}); re-create it "
                       "with experiments/personalize.py") from None


def check_profile_for(profile: StyleProfile, *, latent_dim: int, fingerprint: str | None,
                      path: str = "") -> None:
  """Raises ``ProfileError`` unless ``profile`` fits a stylizer.

  Args:
    profile: the profile (``path``: its file, for the message).
    latent_dim: the stylizer's latent size.
    fingerprint: the stylizer checkpoint's fingerprint; ``None`` skips the
      check, as does a profile that recorded none.
  """
  name = path or "the style profile"
  advice = "re-create it with experiments/personalize.py for this checkpoint"
  ckpt = profile.provenance.get("checkpoint") or {}
  recorded = ckpt.get("fingerprint")
  if fingerprint is not None and recorded and recorded != fingerprint:
    made_from = f" {ckpt['path']}" if ckpt.get("path") else ""
    raise ProfileError(f"{name}: made for another checkpoint{made_from} (fingerprint "
                       f"{recorded[:12]}…, this checkpoint {fingerprint[:12]}…); {advice}")
  if profile.latent_dim != latent_dim:
    raise ProfileError(f"{name}: latent size {profile.latent_dim} does not match the "
                       f"stylizer's latent size {latent_dim}; {advice}")


def parse_profile_arg(text: str) -> tuple[str, float]:
  """Parses ``PATH[:WEIGHT]``: ``"me.style:0.7"`` -> ``("me.style", 0.7)``.

  Without a weight the weight is 1.0. A colon is a path character (Windows
  drives, ``a:b/me.style``) when what follows it contains ``/`` or ``\\`` or
  ends in ``.style``; otherwise it must be followed by a number in [0, 1].

  Raises:
    ProfileError: empty path, or a weight that is not a number in [0, 1].
  """
  usage = "expected PATH[:WEIGHT] with WEIGHT a number in [0, 1], e.g. me.style:0.7"
  path, sep, tail = text.rpartition(":")
  if not sep or "/" in tail or "\\" in tail or tail.endswith(SUFFIX):
    path, weight = text, 1.0
  else:
    try:
      weight = float(tail)
    except ValueError:
      weight = math.nan
    if not 0.0 <= weight <= 1.0:
      raise ProfileError(f"profile {text!r}: bad weight {tail!r}; {usage}")
  if not path:
    raise ProfileError(f"profile {text!r}: no file given; {usage}")
  return path, weight


def fit_style_space(latents, dims: int, source: str = "") -> StyleSpace:
  """Fits a ``dims``-d style space to a collection of latents by PCA (SVD in float64).

  Each column's largest-magnitude entry is made positive; ``scales`` are the
  singular values / sqrt(n - 1), so the collection's coords have unit std
  (ddof=1) per axis; ``explained`` is each column's share of the total variance.

  Raises:
    ValueError: ``latents`` not a finite ``[n, D]`` array with n >= 2, ``dims``
      outside [1, min(n - 1, D)], or latents spanning fewer than ``dims`` directions.
  """
  z = np.asarray(latents, np.float64)
  if z.ndim != 2 or z.shape[0] < 2 or not np.all(np.isfinite(z)):
    raise ValueError(f"latents must be a finite [n, D] array with n >= 2, got shape {z.shape}")
  n, big_d = z.shape
  if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) \
      or not 1 <= dims <= min(n - 1, big_d):
    raise ValueError(f"dims must be an integer in [1, {min(n - 1, big_d)}] for {n} latents "
                     f"of size {big_d}, got {dims!r}")
  mean = z.mean(axis=0)
  _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
  total = float(np.sum(s**2))
  if total <= 0 or s[dims - 1] <= 1e-6 * s[0]:
    raise ValueError(f"the {n} latents span fewer than {dims} directions; use fewer dims")
  basis = vt[:dims].T
  rows = np.argmax(np.abs(basis), axis=0)
  basis = basis * np.sign(basis[rows, np.arange(dims)])
  return StyleSpace(mean=mean, basis=basis, scales=s[:dims] / math.sqrt(n - 1),
                    explained=s[:dims]**2 / total, source=source)


def append_round(profile: StyleProfile, record: dict) -> StyleProfile:
  """A copy of ``profile`` with ``record`` (a JSON object) appended to ``provenance["rounds"]``."""
  if not isinstance(record, dict):
    raise ValueError(f"a round record must be a dict, got {type(record).__name__}")
  provenance = dict(profile.provenance)
  provenance["rounds"] = list(provenance.get("rounds", [])) + [record]
  return dataclasses.replace(profile, provenance=provenance)
