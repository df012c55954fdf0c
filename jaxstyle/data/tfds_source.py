"""TFDS datasets as random-access sources: prepare once, then read by index.

This is the one way jaxstyle reads a TFDS dataset (MNIST, and any other
dataset a loader asks for by its TFDS name):

* ``prepare(name, data_dir)`` builds ``tfds.builder(name, data_dir=data_dir,
  file_format="array_record")`` and runs ``download_and_prepare`` on it, which
  is a no-op once the dataset is on disk. The first preparation downloads the
  dataset's files, so it needs the internet, and it needs TensorFlow (the
  ``tfds`` extra: ``pip install -e ".[tfds]"``); reading a prepared dataset
  needs neither.
  ``array_record`` is asked for explicitly because random access needs it and
  TFDS would otherwise write TFRecord files into an explicit ``data_dir``.
  Prepared datasets are never fetched from the TFDS GCS bucket.
* ``data_source(name, split, data_dir)`` returns the split as a random-access
  sequence: ``len(source)`` records, ``source[i]`` a dict of decoded features
  (NumPy arrays and scalars), in the order of the prepared files.
* ``read_records(source)`` yields every record of a source in that order,
  reading a chunk of records per call where the source can.

``data_dir=None`` is the TFDS default (``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets``). Every failure is a ``DataError`` that names the
dataset, the data directory and the fix.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from jaxstyle.errors import DataError

FILE_FORMAT = "array_record"
TFDS_INSTALL = 'pip install -e ".[tfds]"'


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise DataError(f"TFDS datasets need tensorflow-datasets and importlib_resources ({e}); "
                    f"install them with {TFDS_INSTALL}") from e
  return tfds


def _missing_module(e: BaseException) -> str | None:
  """Name of the top-level module whose import failed somewhere under ``e``, if any."""
  seen = set()
  while e is not None and id(e) not in seen:
    if isinstance(e, ImportError) and getattr(e, "name", None):
      return e.name.split(".")[0]
    seen.add(id(e))
    e = e.__cause__ or e.__context__
  return None


def _describe(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


def _preparation_error(name: str, where: str, e: Exception) -> DataError:
  missing = _missing_module(e)
  if missing == "tensorflow":
    return DataError(f"preparing TFDS dataset {name!r} in {where} needs TensorFlow the first "
                     f"time; install it with {TFDS_INSTALL} (or pip install tensorflow-cpu). "
                     "Reading it afterwards does not need TensorFlow")
  if missing is not None:
    return DataError(f"preparing TFDS dataset {name!r} in {where} needs the module {missing!r} "
                     f"({_describe(e)}); install it with {TFDS_INSTALL}")
  return DataError(f"cannot prepare TFDS dataset {name!r} in {where} ({_describe(e)}); the "
                   "first use downloads it and needs the internet")


def prepare(name: str, data_dir: str | None = None):
  """Returns the TFDS builder of ``name``, downloading and preparing it first if needed.

  Args:
    name: TFDS dataset name (e.g. "mnist", "coco/2017").
    data_dir: TFDS data directory; None: the TFDS default.

  Returns:
    The prepared ``tfds.core.DatasetBuilder`` (array_record files).

  Raises:
    DataError: TFDS is not installed, the dataset is not known to TFDS, or the
      first preparation lacks TensorFlow or the internet.
  """
  tfds = _import_tfds()
  where = data_dir or "the TFDS data dir"
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format=FILE_FORMAT)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DataError(f"TFDS has no dataset {name!r} ({_describe(e)})") from e
  except Exception as e:  # a module missing, an unreadable data_dir
    raise _preparation_error(name, where, e) from e
  where = str(builder.data_dir)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except Exception as e:  # network, disk, TensorFlow missing, format problems inside TFDS
    raise _preparation_error(name, where, e) from e
  return builder


def data_source(name: str, split: str, data_dir: str | None = None) -> Sequence[Any]:
  """Split ``split`` of TFDS dataset ``name`` as a random-access sequence of decoded records.

  Prepares the dataset first (see ``prepare``).

  Raises:
    DataError: as ``prepare``; also for an unknown split, or a dataset already
      prepared in ``data_dir`` in a format without random access (TFRecord).
  """
  builder = prepare(name, data_dir)
  where = str(builder.data_dir)
  try:
    return builder.as_data_source(split=split)
  except NotImplementedError as e:  # prepared earlier as TFRecord (e.g. by tfds.load)
    raise DataError(f"TFDS dataset {name!r} in {where} was prepared as "
                    f"{builder.info.file_format.value}, which has no random access; delete "
                    f"{where} (it is prepared again as {FILE_FORMAT}) or use another TFDS data "
                    "dir ($TFDS_DATA_DIR)") from e
  except Exception as e:  # unknown split, unreadable files
    raise DataError(f"cannot read split {split!r} of TFDS dataset {name!r} from {where} "
                    f"({_describe(e)})") from e


def read_records(source: Sequence[Any], chunk_size: int = 1024) -> Iterator[Any]:
  """Yields ``source[0], source[1], ...``, reading ``chunk_size`` records per batched read.

  Sources whose batched ``__getitems__`` is missing or broken (the one under
  ``tfds.testing.mock_data`` raises TypeError) are read one record at a time.
  """
  n = len(source)
  getitems = getattr(source, "__getitems__", None)
  for start in range(0, n, chunk_size):
    keys = list(range(start, min(start + chunk_size, n)))
    if getitems is not None:
      try:
        chunk = getitems(keys)
      except TypeError:
        getitems = None
      else:
        yield from chunk
        continue
    for key in keys:
      yield source[key]
