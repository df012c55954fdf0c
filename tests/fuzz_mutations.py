"""Seeded mutations of valid files, for the fuzz tests (``fuzz_testlib`` re-exports them).

Contract:

* Every mutator takes the valid seed content and a ``numpy.random.Generator``
  and returns ``(new content, description)``; the description names what was
  done (offsets, member names, values), so a failing case can be read without
  re-running it. Mutators are deterministic in the generator.
  - ``mutate_bytes``: truncation, byte flips (anywhere, in the header, in the
    tail), inserted / deleted / duplicated / zeroed chunks, an empty file.
  - ``mutate_zip``: member-level damage of a zip (``.npz``, torch's ``.pth``):
    a member missing, renamed, replaced by junk, truncated or bit-flipped (bad
    CRC), a ``.npy`` header declaring a huge shape or another dtype, an extra
    or duplicated member, a deflated archive.
  - ``mutate_arrays``: array-level damage of an ``.npz``'s arrays (wrong dtype
    including object arrays, wrong shape or rank, empty, NaN / inf, a member
    missing or added); returns the dict to ``npz_bytes``.
  - ``mutate_json``: a JSON value with one node deleted, retyped or replaced
    (huge numbers, NaN, deep nesting, strings for numbers, ...).
  - ``mutate_lines``: line-level damage of a text file (JSONL, flagfiles).
  - ``json_text_mutators(text)``: JSON-, line- and byte-level mutators of a
    JSON file.
  - ``npz_mutators(data, json_key)``: the byte-, member-, array- and (for a
    JSON member such as ``meta``) JSON-level mutators of a valid ``.npz``.
"""

from __future__ import annotations

import io
import json
import math
import warnings
import zipfile
from typing import Any, Callable, Iterable

import numpy as np


# ----------------------------------------------------------------------------- bytes


def _span(rng, n: int, most: int = 64) -> tuple[int, int]:
  start = int(rng.integers(0, max(n, 1)))
  return start, min(n, start + int(rng.integers(1, most + 1)))


def mutate_bytes(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
  """One random byte-level mutation of ``data`` (see the module contract)."""
  n = len(data)
  kind = str(rng.choice(["truncate", "truncate", "flip", "flip", "flip_head", "flip_tail",
                         "insert", "delete", "duplicate", "zero", "empty"]))
  if kind == "empty" or n == 0:
    return b"", "empty file"
  if kind == "truncate":
    cut = int(rng.integers(0, n))
    return data[:cut], f"truncated to {cut} of {n} bytes"
  if kind.startswith("flip"):
    out = bytearray(data)
    lo, hi = {"flip": (0, n), "flip_head": (0, min(n, 64)), "flip_tail": (max(0, n - 64), n)}[kind]
    where = sorted(int(i) for i in rng.integers(lo, hi, size=int(rng.integers(1, 9))))
    for i in where:
      out[i] ^= int(rng.integers(1, 256))
    return bytes(out), f"{kind} at {where}"
  start, end = _span(rng, n)
  if kind == "insert":
    chunk = rng.integers(0, 256, size=int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    return data[:start] + chunk + data[start:], f"inserted {len(chunk)} random bytes at {start}"
  if kind == "delete":
    return data[:start] + data[end:], f"deleted bytes {start}:{end}"
  if kind == "duplicate":
    return data[:end] + data[start:end] + data[end:], f"duplicated bytes {start}:{end}"
  return data[:start] + bytes(end - start) + data[end:], f"zeroed bytes {start}:{end}"


# ----------------------------------------------------------------------------- zips


def zip_members(data: bytes) -> list[tuple[str, bytes]]:
  with zipfile.ZipFile(io.BytesIO(data)) as z:
    return [(info.filename, z.read(info)) for info in z.infolist()]


def zip_bytes(members: Iterable[tuple[str, bytes]],
              compression: int = zipfile.ZIP_STORED) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", compression) as z, warnings.catch_warnings():
    warnings.simplefilter("ignore")  # duplicate names are one of the mutations
    for name, payload in members:
      z.writestr(name, payload)
  return buf.getvalue()


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
  buf = io.BytesIO()
  np.save(buf, array, allow_pickle=allow_pickle)
  return buf.getvalue()


def _npy_with_header(payload: bytes, rng) -> tuple[bytes, str]:
  """``payload`` (a .npy) with its header replaced: a huge shape, another dtype, or junk."""
  from numpy.lib import format as npformat

  body_at = payload.find(b"\n") + 1 if payload.startswith(b"\x93NUMPY") else 0
  body = payload[body_at:]
  kind = str(rng.choice(["huge", "huge", "dtype", "fortran", "junk", "negative"]))
  header = {"descr": "<f4", "fortran_order": False, "shape": (4,)}
  if kind == "huge":
    shapes = [(2**40,), (2**31, 2**31), (10**6, 10**6, 10**6), (2**62,), (3, 3, 2**40, 64)]
    header["shape"] = shapes[int(rng.integers(0, len(shapes)))]
  elif kind == "negative":
    header["shape"] = (-5, 3)
  elif kind == "dtype":
    header["descr"] = str(rng.choice(["|O", ">f8", "<c16", "|S5", "<U7", "<M8[s]", "|V3", "<f2"]))
    header["shape"] = (int(rng.integers(0, 4)),)
  elif kind == "fortran":
    header["fortran_order"] = True
    header["shape"] = (2, 2)
  if kind == "junk":
    text = b"{'descr': <f4, 'shape': (((" + b" " * 40 + b"\n"
    head = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
  else:
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, header)
    head = buf.getvalue()
  return head + body, f"npy header {kind} {header}"


def mutate_zip(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
  """One random member-level mutation of the zip archive ``data`` (see the module contract)."""
  members = zip_members(data)
  i = int(rng.integers(0, len(members)))
  name, payload = members[i]
  kind = str(rng.choice(["drop", "rename", "junk", "truncate", "flip", "header", "header",
                         "mutate", "mutate", "extra", "duplicate", "deflate", "empty_member",
                         "dir_entry"]))
  desc = f"member {name!r}: {kind}"
  if kind == "drop":
    del members[i]
  elif kind == "rename":
    new = str(rng.choice(["x.npy", name.upper(), name + ".bak", "../" + name,
                          name.replace(".", "_"), "data.pkl", "archive/data.pkl"]))
    members[i] = (new, payload)
    desc += f" to {new!r}"
  elif kind == "junk":
    members[i] = (name, rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8)
                  .tobytes())
  elif kind == "truncate":
    cut = int(rng.integers(0, max(len(payload), 1)))
    members[i] = (name, payload[:cut])
    desc += f" to {cut} of {len(payload)} bytes"
  elif kind == "flip":  # rewritten in place, so the stored CRC no longer matches
    return _flip_member_in_place(data, name, payload, rng)
  elif kind == "mutate":  # re-zipped with a correct CRC: the member's reader sees the damage
    new_payload, what = mutate_bytes(payload, rng)
    members[i] = (name, new_payload)
    desc += f" ({what})"
  elif kind == "header":
    new_payload, what = _npy_with_header(payload, rng)
    members[i] = (name, new_payload)
    desc += f" ({what})"
  elif kind == "extra":
    members.append(("extra.npy", npy_bytes(np.arange(3, dtype=np.float32))))
  elif kind == "duplicate":
    members.append((name, payload[: len(payload) // 2]))
  elif kind == "empty_member":
    members[i] = (name, b"")
  elif kind == "dir_entry":
    members[i] = (name.rstrip("/") + "/", b"")
  if kind == "deflate":
    return zip_bytes(members, zipfile.ZIP_DEFLATED), desc
  return zip_bytes(members), desc


def _flip_member_in_place(data: bytes, name: str, payload: bytes, rng) -> tuple[bytes, str]:
  at = data.find(payload) if payload else -1
  if at < 0:
    return mutate_bytes(data, rng)
  out = bytearray(data)
  where = sorted(at + int(j) for j in rng.integers(0, len(payload), size=int(rng.integers(1, 5))))
  for j in where:
    out[j] ^= int(rng.integers(1, 256))
  return bytes(out), f"member {name!r}: bytes flipped at {where} (stored CRC now wrong)"


# ----------------------------------------------------------------------------- npz arrays


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
  """``np.savez``'s bytes, object arrays included (as pickles: the loaders must refuse them)."""
  return zip_bytes((f"{k}.npy", npy_bytes(np.asanyarray(v), allow_pickle=True))
              for k, v in arrays.items())


def npz_arrays(data: bytes) -> dict[str, np.ndarray]:
  """The arrays of a valid ``.npz``'s bytes."""
  with np.load(io.BytesIO(data), allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


_DTYPES = (np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64, "U3",
           "S3", "M8[s]", [("a", "<f4"), ("b", "<i4")], object)


def mutate_arrays(arrays: dict[str, np.ndarray], rng: np.random.Generator
                  ) -> tuple[dict[str, np.ndarray], str]:
  """One random array-level mutation of an npz's arrays (see the module contract)."""
  out = dict(arrays)
  key = str(rng.choice(sorted(out)))
  a = np.asarray(out[key])
  kind = str(rng.choice(["dtype", "dtype", "shape", "rank", "empty", "scalar", "nan", "inf",
                         "drop", "add", "huge"]))
  desc = f"array {key!r} {a.dtype}{a.shape}: {kind}"
  if kind == "dtype":
    dt = _DTYPES[int(rng.integers(0, len(_DTYPES)))]
    if dt is object:
      out[key] = np.array([a.tolist() if a.ndim else a.item(), None], dtype=object)
    else:
      try:
        out[key] = a.astype(dt)
      except (TypeError, ValueError):
        out[key] = np.zeros(a.shape, dt)
    desc += f" -> {np.dtype(dt)}"
  elif kind == "shape":
    out[key] = a.reshape(-1)[: max(a.size - 1, 0)] if a.size else np.zeros(3, a.dtype)
  elif kind == "rank":
    out[key] = a[None] if rng.integers(0, 2) else a.reshape(-1)
  elif kind == "empty":
    out[key] = np.zeros((0,) + a.shape[1:], a.dtype)
  elif kind == "scalar":
    out[key] = a.reshape(-1)[0] if a.size else np.asarray(0, a.dtype)
  elif kind in ("nan", "inf", "huge"):
    b = np.array(a if a.dtype.kind in "biufc" else np.zeros(a.shape),
                 dtype=np.float32 if a.dtype.kind not in "fc" else a.dtype)
    value = {"nan": np.nan, "inf": -np.inf, "huge": 3e38}[kind]
    if b.size:
      b.reshape(-1)[int(rng.integers(0, b.size))] = value
    out[key] = b
  elif kind == "drop":
    del out[key]
  elif kind == "add":
    out["unexpected"] = np.ones(2, np.float32)
  return out, desc


def npz_mutators(data: bytes, json_key: str | None = None, as_bytes: bool = False
                 ) -> list[Callable[[np.random.Generator], tuple[bytes, str]]]:
  """Mutators of a valid ``.npz`` (bytes): byte-, member- and array-level, and, with
  ``json_key``, JSON-level damage of that member (a 0-d string, or uint8 bytes with
  ``as_bytes``)."""
  arrays = npz_arrays(data)

  def array_case(rng):
    new, desc = mutate_arrays(arrays, rng)
    return npz_bytes(new), desc

  def json_case(rng):
    raw = arrays[json_key]
    obj, desc = mutate_json(json.loads(raw.tobytes().decode() if as_bytes else str(raw)), rng)
    text = dumps_json(obj)
    if rng.integers(0, 8) == 0:
      text, desc = DEEP, "json nested 100000 deep"
    new = (np.frombuffer(text.encode(), np.uint8) if as_bytes else np.asarray(text))
    return npz_bytes(dict(arrays, **{json_key: new})), f"member {json_key!r}: {desc}"

  out = [lambda rng: mutate_bytes(data, rng), lambda rng: mutate_zip(data, rng), array_case]
  return out + [json_case, json_case] if json_key else out + [array_case]


# ----------------------------------------------------------------------------- JSON and text

DEEP = "[" * 100_000 + "]" * 100_000  # deeper than Python's JSON decoder recurses
_DEEP_MARK = "<100000 nested lists>"  # a value of mutate_json that dumps_json writes as DEEP


def _odd_values() -> list[Any]:
  return [None, True, False, 0, -1, 1, 2**70, 1e308, -1e308, math.nan, math.inf, "", "x" * 300,
          "0.5", [], {}, [1, 2], {"a": 1}, 1.5, "nan", [[[[[[[[["deep"]]]]]]]]], _DEEP_MARK]


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
  out = [prefix]
  if isinstance(obj, dict):
    for k, v in obj.items():
      out += _paths(v, prefix + (k,))
  elif isinstance(obj, list):
    for i, v in enumerate(obj[:8]):
      out += _paths(v, prefix + (i,))
  return out


def mutate_json(obj: Any, rng: np.random.Generator) -> tuple[Any, str]:
  """``obj`` (a JSON value, not changed) with one node deleted, retyped or replaced."""
  obj = json.loads(json.dumps(obj))
  paths = _paths(obj)
  path = paths[int(rng.integers(0, len(paths)))]
  kind = str(rng.choice(["replace", "replace", "replace", "delete", "add_key", "wrap"]))
  if kind == "delete" and not path:
    kind = "replace"
  parent = obj
  for p in path[:-1]:
    parent = parent[p]
  odd = _odd_values()
  value = odd[int(rng.integers(0, len(odd)))]
  here = parent[path[-1]] if path else obj
  if kind == "replace":
    new = value
  elif kind == "wrap":
    new = [here]
  elif kind == "add_key":
    new = dict(here, unexpected_key=value) if isinstance(here, dict) else value
  if kind == "delete":
    if isinstance(parent, dict):
      del parent[path[-1]]
    else:
      parent.pop(path[-1])
  elif not path:
    obj = new
  else:
    parent[path[-1]] = new
  shown = "root" if not path else "/".join(map(str, path))
  return obj, f"json {kind} at {shown}" + (f" with {json.dumps(value)[:40]}"
                                            if kind in ("replace", "add_key") else "")


def dumps_json(obj: Any) -> str:
  """JSON text of a mutated value: NaN / Infinity tokens (Python's reader accepts them), and
  the deep-nesting mark of ``mutate_json`` written as ``DEEP``."""
  return json.dumps(obj, allow_nan=True).replace(json.dumps(_DEEP_MARK), DEEP)


def json_text_mutators(text: str) -> list[Callable[[np.random.Generator], tuple[bytes, str]]]:
  """Mutators of a JSON file's text: JSON-level (twice as often), line-level and byte-level."""
  def json_case(rng):
    obj, desc = mutate_json(json.loads(text), rng)
    return dumps_json(obj).encode(), desc

  return [json_case, json_case, lambda rng: mutate_lines(text, rng),
          lambda rng: mutate_bytes(text.encode(), rng)]


def mutate_lines(text: str, rng: np.random.Generator) -> tuple[bytes, str]:
  """One line-level mutation of a text file; returns bytes (invalid UTF-8 is one mutation)."""
  lines = text.splitlines(keepends=True) or ["\n"]
  i = int(rng.integers(0, len(lines)))
  kind = str(rng.choice(["drop", "duplicate", "swap", "junk", "bad_utf8", "nul", "json", "long",
                         "deep", "no_newline", "crlf"]))
  desc = f"line {i + 1}: {kind}"
  if kind == "drop":
    del lines[i]
  elif kind == "duplicate":
    lines.insert(i, lines[i])
  elif kind == "swap":
    j = int(rng.integers(0, len(lines)))
    lines[i], lines[j] = lines[j], lines[i]
  elif kind == "junk":
    lines[i] = "".join(chr(int(c)) for c in rng.integers(32, 127, size=20)) + "\n"
  elif kind == "bad_utf8":
    return "".join(lines[:i]).encode() + b"\xff\xfe\xc3(" + "".join(lines[i:]).encode(), desc
  elif kind == "nul":
    lines[i] = lines[i][:1] + "\x00" + lines[i][1:]
  elif kind == "json":
    try:
      obj = json.loads(lines[i])
    except ValueError:
      obj = {}
    new, what = mutate_json(obj, rng)
    lines[i] = dumps_json(new) + "\n"
    desc += f" ({what})"
  elif kind == "long":
    lines[i] = "9" * 100_000 + "\n"
  elif kind == "deep":
    lines[i] = DEEP + "\n"
  elif kind == "no_newline":
    lines[-1] = lines[-1].rstrip("\n")
  elif kind == "crlf":
    lines = [ln.replace("\n", "\r\n") for ln in lines]
  return "".join(lines).encode("utf-8", "surrogatepass"), desc
