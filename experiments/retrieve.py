"""Style retrieval: index a folder of images, query it, evaluate descriptors.

  # Build or update an index (incremental, resumable; see jaxstyle/retrieval/build.py):
  python experiments/retrieve.py index --library DIR --out lib.idx [--descriptor default|gram|stats|naive]
  # ... or with a trained stylizer's style encoder (the descriptor that personal profiles query):
  python experiments/retrieve.py index --library DIR --out lib.idx --descriptor encoder --checkpoint RUN
  # Top-k most similar styles to an image (optionally a PNG contact sheet / HTML page):
  python experiments/retrieve.py query --index lib.idx --image Q.jpg [--k 10] [--sheet out.png] [--html out.html]
  # Top-k images that match a personal style profile (an encoder index of the profile's stylizer):
  python experiments/retrieve.py query --index lib.idx --profile me.style [--sheet out.png]
  # Leave-one-out P@1 / P@5 / mAP per descriptor on a labelled library:
  python experiments/retrieve.py eval --library DIR --labels labels.csv [--descriptors default,stats,naive]

Each command has its own flags (`retrieve.py COMMAND --help`). `index` and
`eval` take a descriptor preset plus one flag per descriptor setting
(`--scales 256`, `--layers relu3_1,relu3_2`, `--whiten_dim 0`, ...) that
overrides the preset's value.

The index file is one .npz (no pickles) holding descriptors, relative paths,
SHA-256 content hashes, sizes, mtimes and the descriptor config as JSON; while
building, progress is kept in `<out>.partial` so an interrupted run resumes.
`query --profile FILE.style` queries by a personal style profile
(experiments/personalize.py): the profile's latent is compared with the
library's style-encoder latents, so the index must be an `encoder` index of
the profile's stylizer (checked by fingerprint).

User errors print one line `error: ...` and exit with status 2. Outputs
(--out, --sheet, --html) are checked before any work; flags that do not apply
are refused (--checkpoint without an encoder descriptor or index, or with
--profile; --thumb without --sheet). Images larger than --max_pixels are
refused (skipped while indexing); a query image upscaled more than 4x gives
one `warning:` line.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import os
import time

import cli
from cli import FLAGS, flags

import numpy as np
from tqdm import tqdm

from jaxstyle import config as cfglib
from jaxstyle import fileio
from jaxstyle import images as images_lib
from jaxstyle import inference
from jaxstyle import retrieval
from jaxstyle import vgg
from jaxstyle.errors import print_warning

# Descriptor settings that get no override flag: the preset (--descriptor) chooses the kind,
# and the encoder's fingerprint comes from --checkpoint.
_NOT_FLAGS = ("kind", "checkpoint_fingerprint")


# ----------------------------------------------------------------------------
# Flags.


def _define_common():
  cli.define_vgg_weights()
  cli.define_max_pixels()
  flags.DEFINE_integer("batch_size", 8, "VGG batch size in image tiles.", lower_bound=1)


def _define_descriptor_overrides():
  """One flag per descriptor setting; unset flags keep the preset's value."""
  names = [s.name for s in cfglib.settings(retrieval.DescriptorConfig)]
  cli.define_config_flags(retrieval.DescriptorConfig, defaults={n: None for n in names},
                          exclude=_NOT_FLAGS)


def _define_library():
  flags.DEFINE_string("library", None, "Folder of images (walked recursively; hidden files "
                      "skipped).")
  flags.mark_flag_as_required("library")


def _define_index_flags():
  _define_common()
  _define_library()
  flags.DEFINE_string("out", None, "Index file to create or update (an .npz, any name, e.g. "
                      "lib.idx). Written atomically; progress is kept in OUT.partial.")
  flags.mark_flag_as_required("out")
  flags.DEFINE_string("descriptor", "default", "Descriptor preset: default (= gram: covariance "
                      "Grams of relu3_1..relu3_4 on 512 px tiles, signed sqrt, 1024-d count "
                      "sketch per layer, 96-d PCA whitening fitted on the library), gram, stats "
                      "(AdaIN per-channel mean/std of relu1_1..relu3_4), naive (raw "
                      "relu1_1/2_1/3_1 Grams at 256 px, the known baseline), encoder (the style "
                      "encoder latent of the stylizer --checkpoint: the descriptor that --profile "
                      "queries). The descriptor setting flags override single values of the "
                      "preset.")
  _define_descriptor_overrides()
  flags.DEFINE_boolean("rebuild", False, "Ignore an existing index at --out (even one built with "
                       "another descriptor config, or a corrupt one) and replace it.")
  flags.DEFINE_integer("save_every", 256, "Newly embedded images between partial saves "
                       "(0 = never).", lower_bound=0)


def _define_query_flags():
  _define_common()
  flags.DEFINE_string("index", None, "Index file built by `retrieve.py index`.")
  flags.mark_flag_as_required("index")
  flags.DEFINE_string("image", None, "The query image.")
  flags.DEFINE_string("profile", None, "A personal .style profile (experiments/personalize.py) "
                      "instead of --image; needs an index built with --descriptor encoder "
                      "--checkpoint of the profile's stylizer.")
  flags.DEFINE_string("checkpoint", None, "encoder indexes: where the index's stylizer run is now "
                      "(default: the path recorded in the index; checked by fingerprint).")
  flags.DEFINE_integer("k", 10, "Number of results.", lower_bound=1)
  flags.DEFINE_string("html", None, "Write a static HTML contact sheet here (relative links to "
                      "the query and library images).")
  flags.DEFINE_string("sheet", None, "Write a PNG contact sheet here (query first, then the "
                      "results in rank order).")
  flags.DEFINE_integer("thumb", 160, "Thumbnail size in the PNG sheet (pixels).", lower_bound=1)


def _define_eval_flags():
  _define_common()
  _define_library()
  flags.DEFINE_string("labels", None, "CSV with columns path,label (paths relative to "
                      "--library).")
  flags.mark_flag_as_required("labels")
  flags.DEFINE_list("descriptors", ["default", "stats", "naive"], "Descriptor presets to "
                    "evaluate (one output line each); the descriptor setting flags override "
                    "single values of every preset.")
  _define_descriptor_overrides()


def _stylizer():
  """The stylizer of ``--checkpoint`` (its VGG weights: ``--vgg_weights`` or the run's own)."""
  if not FLAGS.checkpoint:
    raise cli.UsageError("--descriptor encoder needs --checkpoint RUN (a train_stylizer.py run "
                         "directory with a style encoder)")
  return inference.load_stylizer(FLAGS.checkpoint, vgg_weights=FLAGS.vgg_weights)


def _descriptor_config(name: str, model=None) -> retrieval.DescriptorConfig:
  """Preset ``name`` with the descriptor setting flags given on the command line applied.

  ``encoder`` is made from ``model`` (``retrieval.encoder_config``); the
  commands refuse ``--checkpoint`` without it.
  """
  if name == "encoder":
    preset = retrieval.encoder_config(model)
  else:
    preset = retrieval.get_config(name)
  keep = {s.name: getattr(preset, s.name) for s in cfglib.settings(preset)
          if not cli.flag_given(s.name) or s.name == "checkpoint"}
  return cli.config_from_flags(retrieval.DescriptorConfig, **keep)


# ----------------------------------------------------------------------------
# index


def _index_main(argv):
  del argv
  library, out = FLAGS.library, FLAGS.out
  if not os.path.isdir(library):
    raise cli.UsageError(f"--library {library}: not a folder")
  fileio.check_output_file(out, "--out")
  if FLAGS.descriptor != "encoder":
    cli.refuse_given(["checkpoint"], "applies only to --descriptor encoder; drop it")
  model = _stylizer() if FLAGS.descriptor == "encoder" else None
  config = _descriptor_config(FLAGS.descriptor, model)
  weights = model.weights() if model is not None else vgg.load_weights(FLAGS.vgg_weights)
  bar = tqdm(total=0, unit="img", desc="index", dynamic_ncols=True)

  def progress(done, total):
    bar.total = total
    bar.n = done
    bar.refresh()

  start = time.time()
  try:
    index, report = retrieval.build_index(library, out, weights, config,
                                          batch_size=FLAGS.batch_size,
                                          save_every=FLAGS.save_every, rebuild=FLAGS.rebuild,
                                          progress=progress, encoder=model)
  finally:
    bar.close()
  for path, message in report.failed:
    print(f"skipped unreadable file {path}: {message}")
  print(f"indexed {len(index)} images in {out} ({report.embedded} embedded, {report.reused} "
        f"unchanged/reused, {report.resumed} resumed, {report.dropped} dropped, "
        f"{len(report.failed)} unreadable) in {time.time() - start:.1f}s; descriptor "
        f"{config.kind} D={index.base.shape[1]} search d={index.search.shape[1]}")


# ----------------------------------------------------------------------------
# query


def _thumb(path, size):
  im = images_lib.load_image(path, size)
  h, w = im.shape[:2]
  canvas = np.ones((size, size, 3), np.float32)
  top, left = (size - h) // 2, (size - w) // 2
  canvas[top:top + h, left:left + w] = im
  return canvas


def _query_thumb(image, profile, size):
  """The query's tile: the image, or a profile's preview (``personalize.py`` writes one)."""
  if image:
    return _thumb(image, size)
  preview = os.path.splitext(profile)[0] + "_preview.png"
  if os.path.isfile(preview):
    return _thumb(preview, size)
  return np.full((size, size, 3), 0.5, np.float32)


def _write_html(path, query, results):
  here = os.path.dirname(os.path.abspath(path))

  def link(p):
    return html.escape(os.path.relpath(os.path.abspath(p), here).replace(os.sep, "/"))

  rows = "\n".join(
      f'<figure><img src="{link(p)}" loading="lazy"><figcaption>{i + 1}. {html.escape(rel)}'
      f"<br>score {s:.4f}</figcaption></figure>" for i, (p, rel, s) in enumerate(results))
  text = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>style query: {html.escape(os.path.basename(query))}</title>
<style>body{{font-family:sans-serif}} figure{{display:inline-block;margin:6px;width:200px;
vertical-align:top}} img{{max-width:200px;max-height:200px}}</style></head><body>
<h2>Query</h2><figure><img src="{link(query)}"><figcaption>{html.escape(query)}</figcaption></figure>
<h2>Top {len(results)}</h2>
{rows}
</body></html>
"""
  fileio.atomic_write_text(path, text)


def _index_stylizer(index):
  """An encoder index's stylizer: ``--checkpoint`` or the recorded run, checked by fingerprint."""
  config = index.config
  if FLAGS.checkpoint:
    config = dataclasses.replace(config, checkpoint=FLAGS.checkpoint)
  return retrieval.load_encoder(config, vgg_weights=FLAGS.vgg_weights)


def _query_main(argv):
  del argv
  index_path = FLAGS.index
  image, profile = FLAGS.image, FLAGS.profile
  if image and profile:
    raise cli.UsageError("pass either --image or --profile, not both")
  if not image and not profile:
    raise cli.UsageError("`query` needs --image Q.jpg or --profile me.style (see --help)")
  if profile:
    cli.refuse_given(["checkpoint"], "applies only to --image queries of an encoder index (a "
                     "--profile is compared with the index's latents as they are); drop it")
  if not FLAGS.sheet:
    cli.refuse_given(["thumb"], "applies only with --sheet (the PNG contact sheet); drop it")
  for flag in ("sheet", "html"):
    if FLAGS[flag].value:
      fileio.check_output_file(FLAGS[flag].value, f"--{flag}")
  index = retrieval.load_index(index_path)
  if not index.complete:
    raise cli.UsageError(f"{index_path} is an incomplete (partial) index; finish it with "
                         "`retrieve.py index`")
  if not len(index):
    raise retrieval.RetrievalError(f"{index_path}: the index is empty")
  if index.config.kind != "encoder":
    cli.refuse_given(["checkpoint"], f"applies only to encoder indexes ({index_path} is a "
                     f"{index.config.kind} index); drop it")
  if profile:
    scores, idx = retrieval.query_profile(index, profile, FLAGS.k)
  else:
    model = _index_stylizer(index) if index.config.kind == "encoder" else None
    weights = model.weights() if model is not None else vgg.load_weights(FLAGS.vgg_weights)
    scores, idx = retrieval.query_index(index, weights, [image], k=FLAGS.k,
                                        batch_size=FLAGS.batch_size, encoder=model)
  root = index.library
  results = []
  for rank, (s, i) in enumerate(zip(scores[0], idx[0])):
    rel = index.paths[i]
    print(f"{rank + 1:3d}  {s:.4f}  {rel}")
    results.append((os.path.join(root, rel), rel, float(s)))
  if FLAGS.html:
    _write_html(FLAGS.html, image or profile, results)
    print(f"wrote {FLAGS.html}")
  if FLAGS.sheet:
    tiles = [_query_thumb(image, profile, FLAGS.thumb)]
    for p, rel, _ in results:
      try:
        tiles.append(_thumb(p, FLAGS.thumb))
      except images_lib.ImageError as e:  # library changed since indexing
        print_warning(str(e))
        tiles.append(np.zeros((FLAGS.thumb, FLAGS.thumb, 3), np.float32))
    images_lib.save_image(FLAGS.sheet, images_lib.make_grid(np.stack(tiles),
                                                            nrow=min(len(tiles), 6)))
    print(f"wrote {FLAGS.sheet} (query first, then ranks 1..{len(results)})")


# ----------------------------------------------------------------------------
# eval


def read_labels(path, library):
  """``[(abs path, label)]`` from a CSV with columns path,label."""
  if not os.path.isfile(path):
    raise cli.UsageError(f"--labels {path}: no such file")
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames or "path" not in reader.fieldnames or \
        "label" not in reader.fieldnames:
      raise cli.UsageError(f"--labels {path}: needs a header with columns path,label "
                              f"(found {reader.fieldnames})")
    rows = [(os.path.join(library, r["path"]), r["label"]) for r in reader]
  if len(rows) < 2:
    raise cli.UsageError(f"--labels {path}: needs at least 2 labelled images")
  return rows


def _eval_main(argv):
  del argv
  if "encoder" not in FLAGS.descriptors:
    cli.refuse_given(["checkpoint"], "applies only when --descriptors lists encoder; drop it")
  model = _stylizer() if "encoder" in FLAGS.descriptors else None
  configs = [_descriptor_config(name, model) for name in FLAGS.descriptors]
  rows = read_labels(FLAGS.labels, FLAGS.library)
  weights = model.weights() if model is not None else vgg.load_weights(FLAGS.vgg_weights)
  embedder = retrieval.Embedder(weights, configs, batch_size=FLAGS.batch_size, encoder=model)
  descs = [[] for _ in configs]
  labels, failed = [], []
  group = 16
  start = time.time()
  for s in tqdm(range(0, len(rows), group), desc="embed", unit="group", dynamic_ncols=True):
    chunk = rows[s:s + group]
    out, ok, bad = embedder.embed_files([p for p, _ in chunk])
    failed += bad
    for d, o in zip(descs, out):
      d.append(o)
    labels += [chunk[i][1] for i in ok]
  embed_s = time.time() - start
  for p, m in failed:
    print(f"skipped unreadable file {p}: {m}")
  for name, config, d in zip(FLAGS.descriptors, configs, descs):
    base = np.concatenate(d)
    search = retrieval.apply_whitening(base, retrieval.fit_whitening(base, config))
    m = retrieval.leave_one_out(search, labels)
    print(f"{name}: P@1={m['p_at_1']:.3f}  P@5={m['p_at_5']:.3f}  mAP={m['map']:.3f}  "
          f"(n={len(labels)}, D={base.shape[1]}, d={search.shape[1]})")
  print(f"embedding time {embed_s:.1f}s for all descriptors together")


COMMANDS = {
    "index": cli.Subcommand("Build or update the style index of a folder of images.",
                            define=_define_index_flags, main=_index_main),
    "query": cli.Subcommand("Top-k most similar styles to a query image.",
                            define=_define_query_flags, main=_query_main),
    "eval": cli.Subcommand("Leave-one-out P@1 / P@5 / mAP of descriptors on a labelled library.",
                           define=_define_eval_flags, main=_eval_main),
}


if __name__ == "__main__":
  cli.run_subcommands(COMMANDS, doc=__doc__)
