"""Benchmark: retrieval quality of the descriptors on a labelled library, chosen on one half, confirmed on the other.

  python experiments/benchmark.py retrieval_quality --checkpoint runs/stylizer_quick \
      [--library ../shared/data/retrieval --labels ../shared/data/retrieval/labels.csv] \
      [--encoder_scales 128,256] [--fuse_weights 0.25,0.5,1,2] [--cache /tmp/desc.npz] \
      [--out results.json]

Every labelled image is embedded once with each descriptor: the default
``gram`` preset and, with ``checkpoint``, the stylizer's style encoder
(``kind="encoder"``) at each of ``encoder_scales``. Variants: each descriptor
alone, whitened as its config says (``whiten_dim``: PCA fitted on the
evaluated images, label-free) or not, and **fusions**: the whitened gram
search descriptor concatenated with ``sqrt(w)`` times an encoder search
descriptor, so the cosine similarity is ``(cos_gram + w·cos_encoder)/(1 + w)``
for each ``w`` of ``fuse_weights``.

Protocols (leave-one-out cosine retrieval, relevant = same label; P@1, P@5,
mAP, ``jaxstyle.retrieval.leave_one_out``):

* ``images``: per class, the first half of its files (by path) are the
  *development* images and the rest the *unseen* ones; every variant is
  scored on each half alone (all classes), the best variant on development
  P@1 is **chosen there**, and its P@1 on the unseen half is the headline;
* ``classes``: the classes sorted by name, first half A, second half B; the
  same choice on A, confirmed on B;
* ``all``: every image (the number retrieve.py eval prints).

``cache``: base descriptors are stored there (with the files' paths and the
configs) and reused when they match, so the choice can be re-examined
without re-embedding.
"""

from __future__ import annotations

import dataclasses
import os
import time

from benchmarks.registry import each_at_least, register
from jaxstyle import config as cfglib

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "..", "shared", "data", "retrieval")


@dataclasses.dataclass(frozen=True)
class Options:
  """The flags of ``benchmark.py retrieval_quality``."""
  library: str = cfglib.setting(os.path.normpath(_DATA), "Folder of the labelled images.")
  labels: str = cfglib.setting(os.path.normpath(os.path.join(_DATA, "labels.csv")),
                               "CSV with columns path,label (paths relative to --library).")
  checkpoint: str = cfglib.setting("", "Stylizer run whose style encoder is measured (empty: the "
                                   "gram descriptor only).")
  vgg_weights: str = cfglib.setting("", "VGG-19 weights (default: the stylizer's own, else "
                                    "JAXSTYLE_VGG19 / ~/.cache/jaxstyle).")
  encoder_scales: tuple[int, ...] = cfglib.setting((128, 256), "Working scales of the encoder "
                                                   "descriptor (one variant each).",
                                                   check=each_at_least(32))
  fuse_weights: tuple[float, ...] = cfglib.setting((0.25, 0.5, 1.0, 2.0),
                                                   "Weights w of the gram + w·encoder fusions.")
  batch_size: int = cfglib.setting(8, "VGG batch size in tiles.", gt=0)
  cache: str = cfglib.setting("", "npz file caching the base descriptors (reused when it matches).")


def _halves(paths, labels):
  """(development, unseen) index lists: per class, the first half of its files by path."""
  dev, unseen = [], []
  for label in sorted(set(labels)):
    members = sorted((p, i) for i, (p, l) in enumerate(zip(paths, labels)) if l == label)
    cut = len(members) // 2
    dev += [i for _, i in members[:cut]]
    unseen += [i for _, i in members[cut:]]
  return sorted(dev), sorted(unseen)


def _class_halves(labels):
  names = sorted(set(labels))
  a = set(names[:len(names) // 2])
  return ([i for i, l in enumerate(labels) if l in a], [i for i, l in enumerate(labels) if l not in a])


def _embed(options, configs, model, weights, files):
  """Base descriptors ``[n, D]`` per config, from the cache when it matches."""
  import json  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top

  from jaxstyle import retrieval  # pylint: disable=g-import-not-at-top

  key = json.dumps({"files": files, "configs": [cfglib.to_dict(c) for c in configs]},
                   sort_keys=True)
  if options.cache and os.path.exists(options.cache):
    with np.load(options.cache, allow_pickle=False) as data:
      if str(data["key"]) == key:
        return [data[f"d{i}"] for i in range(len(configs))], 0.0
  embedder = retrieval.Embedder(weights, configs, batch_size=options.batch_size, encoder=model)
  parts = [[] for _ in configs]
  start = time.time()
  for s in tqdm(range(0, len(files), 16), desc="embed", unit="group", dynamic_ncols=True):
    out, ok, failed = embedder.embed_files(files[s:s + 16])
    if failed:
      raise retrieval.RetrievalError(f"unreadable labelled images: {failed}")
    for p, o in zip(parts, out):
      p.append(o)
  bases = [np.concatenate(p) for p in parts]
  if options.cache:
    np.savez(options.cache, key=np.asarray(key), **{f"d{i}": b for i, b in enumerate(bases)})
  return bases, time.time() - start


@register("retrieval_quality", help="descriptor P@1/P@5/mAP on a labelled library (gram, the "
          "style encoder, fusions), chosen on one half and confirmed on the other", options=Options)
def run(options: Options) -> dict:
  """Scores every variant on every protocol; see the module docstring."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import inference, retrieval, vgg  # pylint: disable=g-import-not-at-top
  import retrieve  # pylint: disable=g-import-not-at-top

  rows = retrieve.read_labels(options.labels, options.library)
  files = [p for p, _ in rows]
  labels = np.asarray([l for _, l in rows])
  model = None
  if options.checkpoint:
    model = inference.load_stylizer(options.checkpoint, vgg_weights=options.vgg_weights or None)
    weights = model.weights()
  else:
    weights = vgg.load_weights(options.vgg_weights or None)
  configs = {"gram": retrieval.get_config("default")}
  if model is not None:
    for s in options.encoder_scales:
      configs[f"encoder{s}"] = retrieval.encoder_config(model, scale=s)
  bases, embed_s = _embed(options, list(configs.values()), model, weights, files)
  bases = dict(zip(configs, bases))

  def search(name, idx, whiten):
    config = configs[name] if whiten else dataclasses.replace(configs[name], whiten_dim=0)
    base = bases[name][idx]
    return retrieval.apply_whitening(base, retrieval.fit_whitening(base, config))

  variants = {}
  for name in configs:
    variants[name] = lambda idx, n=name: search(n, idx, True)
    if name != "gram":
      variants[f"{name} unwhitened"] = lambda idx, n=name: search(n, idx, False)
      for w in options.fuse_weights:
        variants[f"gram + {w:g}·{name}"] = lambda idx, n=name, w=w: np.concatenate(
            [search("gram", idx, True), np.sqrt(w) * search(n, idx, True)], axis=1)

  everyone = list(range(len(files)))
  dev, unseen = _halves(files, labels)
  half_a, half_b = _class_halves(labels)
  splits = {"all": everyone, "images_dev": dev, "images_unseen": unseen,
            "classes_a": half_a, "classes_b": half_b}
  scores = {v: {s: retrieval.leave_one_out(fn(np.asarray(idx)), labels[idx])
                for s, idx in splits.items()} for v, fn in variants.items()}
  chosen_images = max(scores, key=lambda v: scores[v]["images_dev"]["p_at_1"])
  chosen_classes = max(scores, key=lambda v: scores[v]["classes_a"]["p_at_1"])
  return {
      "images": len(files), "classes": len(set(labels)), "embed_s": embed_s,
      "checkpoint": options.checkpoint, "checkpoint_step": model.step if model else None,
      "descriptors": {n: cfglib.to_dict(c) for n, c in configs.items()},
      "splits": {s: len(i) for s, i in splits.items()},
      "scores": scores,
      "chosen_on_image_half": {"variant": chosen_images,
                               "dev_p_at_1": scores[chosen_images]["images_dev"]["p_at_1"],
                               "unseen_p_at_1": scores[chosen_images]["images_unseen"]["p_at_1"]},
      "chosen_on_class_half": {"variant": chosen_classes,
                               "a_p_at_1": scores[chosen_classes]["classes_a"]["p_at_1"],
                               "b_p_at_1": scores[chosen_classes]["classes_b"]["p_at_1"]},
  }
