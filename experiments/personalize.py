"""Personal styles: learn a `.style` profile from images you like or from the choices you make.

  # From a small collection of liked images (3-64, any sizes), the stylizer frozen:
  python experiments/personalize.py from-images --checkpoint runs/stylizer_quick --liked MY_FAVOURITES/ \
      --out me.style [--photos MY_PHOTOS/]
  # From choices: each round shows K stylizations of your photo; pick the one you prefer.
  python experiments/personalize.py from-choices --checkpoint runs/stylizer_quick --photo me.jpg \
      [--start me.style] --rounds 10 --k 4 --out me.style [--ui terminal|web] [--choices picks.jsonl]
  # Then use it anywhere:
  python experiments/stylize.py --checkpoint runs/stylizer_quick --content photo.jpg --profile me.style --out o.png

from-images reports how well each liked image fits the collection (a robust
z-score of its Gram distance to the others; outliers are named) and writes the
profile: by default the style encoder's mean latent of the images refined so
that stylized photos match the collection's pooled Gram statistics.

from-choices searches a low-dimensional style space (PCA of the style
encoder's latents over a painting collection: --space_styles, default the
paintings the run was trained with) with a preference model: a Luce
(Bradley-Terry) likelihood of every pick over a utility that falls with the
distance from your ideal point, its posterior sampled, and Thompson sampling to
choose the next candidates (--utility gp: a Gaussian-process utility and
expected improvement instead; BUILD_NOTES.md has the formulas). Candidate 1 of every round is your current style, so "none of
these" keeps it. Every round is saved to --out as it happens: an interrupted
session keeps every round done, and `--start` with that profile continues it.
--choices replays picks from a JSONL file ({"choice": 2} per line, 1..K,
0 = none), which makes sessions scriptable.

User errors print one line `error: ...` and exit with status 2: --out (and
--sheet_dir) are checked before any work, and flags the chosen front end does
not read (--port without --ui web, --ui or --sheet_dir with --choices, ...) are
refused. Images larger than --max_pixels are refused; liked images upscaled
more than 4x give one `warning:` line each.
"""

from __future__ import annotations

import datetime
import os
import sys

import cli
from cli import FLAGS, flags

from jaxstyle import config as cfglib
from jaxstyle import fileio
from jaxstyle.personalize import from_images as fi
from jaxstyle.personalize import preference as pref

UIS = ("terminal", "web")


# ----------------------------------------------------------------------------- flags


def _define_common():
  flags.DEFINE_string("checkpoint", None, "Run directory of train_stylizer.py (with a style "
                      "encoder): the stylizer the profile is made for.")
  flags.mark_flag_as_required("checkpoint")
  flags.DEFINE_string("out", None, "The .style profile to write (atomically; from-choices rewrites "
                      "it after every round).")
  flags.mark_flag_as_required("out")
  cli.define_vgg_weights()
  flags.DEFINE_string("space_styles", None, "Style images that span the style space (a folder, "
                      "image files or a CSV with a file column). Default: the paintings and bank "
                      "styles the --checkpoint run was trained with.")
  flags.DEFINE_integer("space_dims", 8, "Dimensions of the style space (PCA of the encoder's "
                       "latents over --space_styles, whitened).", lower_bound=1)
  flags.DEFINE_float("strength", 1.0, "Default strength stored in the profile (0 = the photo, "
                     "1 = the full style); stylize.py uses it unless given --strength.")
  cli.define_max_pixels()


def _define_from_images():
  _define_common()
  flags.DEFINE_list("liked", None, "The liked images: a folder, or image files separated by "
                    "commas. Unreadable files are reported and skipped.")
  flags.mark_flag_as_required("liked")
  flags.DEFINE_string("photos", None, "Photos the Gram fit stylizes (a folder; the first 8). "
                      "Default: the liked images themselves.")
  cli.define_config_flags(fi.FromImagesConfig)


def _define_from_choices():
  _define_common()
  flags.DEFINE_string("photo", None, "Your photo: every round shows it stylized K ways.")
  flags.mark_flag_as_required("photo")
  flags.DEFINE_string("start", None, "A .style profile to start from (its style space is reused); "
                      "a profile written by an interrupted from-choices session continues it. "
                      "Default: the mean style of the style space.")
  flags.DEFINE_integer("rounds", 10, "Rounds to run in this session.", lower_bound=1)
  flags.DEFINE_integer("k", 4, "Candidates per round (the first is your current style).",
                       lower_bound=2, upper_bound=9)
  flags.DEFINE_integer("size", 256, "Longer side (pixels) of the photo as shown.", lower_bound=32)
  flags.DEFINE_enum("ui", "terminal", UIS, "terminal: a contact sheet PNG per round, the pick "
                    "typed on stdin; web: a page on http://127.0.0.1:PORT (click or keys 1..K).")
  flags.DEFINE_integer("port", 0, "--ui web: the port on 127.0.0.1 (0 = any free port).",
                       lower_bound=0, upper_bound=65535)
  flags.DEFINE_string("choices", None, "Replay picks from this JSONL file instead of asking "
                      '({"choice": k} per line, k = 1..K, 0 or "none" = none of these).')
  flags.DEFINE_string("sheet_dir", None, "--ui terminal: folder of the round contact sheets "
                      "(default: OUT without extension + '_rounds').")
  cli.define_seed()
  cli.define_config_flags(pref.PreferenceConfig)


# ----------------------------------------------------------------------------- shared


def _load_model():
  from jaxstyle import cpu_tuning  # pylint: disable=g-import-not-at-top

  cpu_tuning.use_fast_cpu_convs()
  from absl import logging  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO level
  from jaxstyle import inference  # pylint: disable=g-import-not-at-top

  model = inference.load_stylizer(FLAGS.checkpoint, vgg_weights=FLAGS.vgg_weights)
  if "encoder" not in model.params:
    raise cli.UsageError(f"--checkpoint {FLAGS.checkpoint} has no style encoder; personalization "
                         "needs a run trained with --latent_source=both or encoder")
  return model


def _check_out():
  if not FLAGS.out.endswith(".style"):
    raise cli.UsageError(f"--out={FLAGS.out}: name the profile FILE.style")
  if os.path.isdir(FLAGS.out):
    raise cli.UsageError(f"--out={FLAGS.out} is a folder; name a FILE.style")
  fileio.check_output_file(FLAGS.out, "--out")
  if not 0.0 <= FLAGS.strength <= 1.0:
    raise cli.UsageError(f"--strength={FLAGS.strength} must be in [0, 1]")


def _space(model, progress_desc: str = "style space"):
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  from jaxstyle import data  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import space as space_lib  # pylint: disable=g-import-not-at-top

  if FLAGS.space_styles:
    files, source = data.style_files(FLAGS.space_styles), FLAGS.space_styles
  else:
    files, source = space_lib.collection_files(model), f"the paintings of {model.path}"
  if not files:
    raise cli.UsageError(f"--checkpoint {FLAGS.checkpoint}: its training paintings are not on this "
                         "machine; pass --space_styles (a folder or CSV of paintings)")
  bar = tqdm(total=len(files), desc=progress_desc, unit="img", leave=False)
  try:
    space = space_lib.build_space(model, files, FLAGS.space_dims,
                                  progress=lambda i, n: bar.update(i - bar.n),
                                  source=f"{len(files)} images: {source}")
  finally:
    bar.close()
  return space


def _provenance(model, method: str, **extra) -> dict:
  import jaxstyle  # pylint: disable=g-import-not-at-top

  return {"checkpoint": {"path": model.path, "fingerprint": model.fingerprint, "step": model.step},
          "method": method,
          "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "jaxstyle_version": jaxstyle.__version__, **extra}


# ----------------------------------------------------------------------------- from-images


def _liked_files() -> list[str]:
  from jaxstyle import images  # pylint: disable=g-import-not-at-top

  if len(FLAGS.liked) == 1 and os.path.isdir(FLAGS.liked[0]):
    files = images.iter_image_files(FLAGS.liked[0])
    if not files:
      raise cli.UsageError(f"--liked {FLAGS.liked[0]}: no images in this folder")
    return files
  missing = [p for p in FLAGS.liked if not os.path.exists(p)]
  if missing:
    raise cli.UsageError(f"--liked: no such file: {missing[0]}")
  return list(FLAGS.liked)


def from_images_main(argv):
  del argv
  _check_out()
  config = cli.config_from_flags(fi.FromImagesConfig)
  files = _liked_files()
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  from jaxstyle import fileio, images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  liked, used, skipped = [], [], []
  for p in files:
    try:
      liked.append(images.load_image(p, config.style_size, side="shorter",
                                     min_side=inference.MIN_STYLE_SIDE))
      used.append(p)
    except images.ImageError as e:
      skipped.append(str(e))
  for reason in skipped:
    print(f"skipped: {reason}", file=sys.stderr)
  fi.check_count(len(liked), "readable liked images" if skipped else "liked images")
  if FLAGS.photos:
    photo_files = images.iter_image_files(FLAGS.photos)[:8]
    if not photo_files:
      raise cli.UsageError(f"--photos {FLAGS.photos}: no images in this folder")
    photos = [images.load_image(p, config.photo_size, side="shorter") for p in photo_files]
  else:
    photos = liked[:8]
  photos = np.stack([images.center_crop(images.resize(im, config.photo_size, side="shorter"),
                                        config.photo_size) for im in photos])
  model = _load_model()
  space = _space(model)
  bar = tqdm(total=config.steps, desc="gram fit", unit="step", leave=False)
  try:
    result = fi.learn_from_images(model, liked, photos, config,
                                  progress=lambda i, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4g}")))
  finally:
    bar.close()
  liked_rec = [{"file": os.path.abspath(p), "sha256": fileio.file_sha256(p),
                "score": float(s), "robust_z": float(z)}
               for p, s, z in zip(used, result.scores, result.robust_z)]
  profile = prof.StyleProfile(
      latent=result.latent, coords=space.to_coords(result.latent), space=space,
      strength=FLAGS.strength,
      provenance=_provenance(model, f"from_images:{result.method}", liked=liked_rec,
                             fit={"loss_start": float(result.fit_losses[0]),
                                  "loss_end": float(np.min(result.fit_losses)),
                                  "steps": config.steps}))
  prof.save_profile(FLAGS.out, profile)
  width = max(len(os.path.basename(p)) for p in used)
  print(f"{'liked image':<{width}}  fit (robust z)")
  for p, z in zip(used, result.robust_z):
    flag = "  <- outlier" if z > config.outlier_z else ""
    print(f"{os.path.basename(p):<{width}}  {z:+7.2f}{flag}")
  if result.outliers:
    print(f"{len(result.outliers)} image(s) fit the collection poorly (z > {config.outlier_z:g}): "
          + ", ".join(os.path.basename(used[i]) for i in result.outliers))
  print(f"style loss on the fit photos: encoder mean {result.fit_losses[0]:.4g} -> fitted "
        f"{np.min(result.fit_losses):.4g}; profile uses '{result.method}'")
  print(f"wrote {FLAGS.out}")


# ----------------------------------------------------------------------------- from-choices


def _start(model):
  """(space, start coords [d], profile to extend or None, replayed rounds, started_from).

  ``started_from``: a ``--start`` profile that is not continued (another --k or --seed, or not a
  from-choices profile), kept whole in the new profile's provenance so nothing of it is lost.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  if not FLAGS.start:
    space = _space(model)
    return space, np.zeros((space.basis.shape[1],), np.float32), None, [], None
  start = prof.load_profile(FLAGS.start)
  prof.check_profile_for(start, latent_dim=model.latent_dim, fingerprint=model.fingerprint,
                         path=FLAGS.start)
  space = start.space if start.space is not None else _space(model)
  session = start.provenance.get("session") or {}
  rounds = start.provenance.get("rounds") or []
  if rounds and session.get("k") == FLAGS.k and session.get("seed") == FLAGS.seed:
    return space, np.asarray(session["start"], np.float32), start, rounds, None
  coords = start.coords if start.coords is not None else space.to_coords(start.latent)
  started_from = {"file": os.path.abspath(FLAGS.start), "provenance": start.provenance}
  return space, np.asarray(coords, np.float32), None, [], started_from


def _check_frontend_flags():
  """Refuses the flags the chosen front end does not read; checks --sheet_dir."""
  if FLAGS.choices:
    cli.refuse_given(("ui", "port", "sheet_dir"), "applies only without --choices (the picks are "
                     "replayed from the file); drop it")
  elif FLAGS.ui == "web":
    cli.refuse_given(("sheet_dir",), "applies only to --ui terminal; drop it")
  else:
    cli.refuse_given(("port",), "applies only to --ui web; drop it, or add --ui web")
    fileio.check_output_dir(FLAGS.sheet_dir or os.path.splitext(FLAGS.out)[0] + "_rounds",
                            "--sheet_dir")


def _frontend(sheet_dir: str, reference):
  from jaxstyle.personalize import loop  # pylint: disable=g-import-not-at-top

  if FLAGS.choices:
    return loop.ReplayFrontend(FLAGS.choices, FLAGS.k)
  if FLAGS.ui == "web":
    from jaxstyle.personalize import web  # pylint: disable=g-import-not-at-top

    server = web.GalleryServer(port=FLAGS.port, photo=reference)
    print(f"open http://127.0.0.1:{server.port}/ in your browser (Ctrl-C stops and keeps every "
          "round done)", flush=True)
    return server
  return loop.TerminalFrontend(sheet_dir)


def from_choices_main(argv):
  del argv
  _check_out()
  pconfig = cli.config_from_flags(pref.PreferenceConfig)
  if FLAGS.choices and not os.path.isfile(FLAGS.choices):
    raise cli.UsageError(f"--choices {FLAGS.choices}: no such file")
  _check_frontend_flags()
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from jaxstyle import fileio, images, inference  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import choices, loop  # pylint: disable=g-import-not-at-top
  from jaxstyle.personalize import profile as prof  # pylint: disable=g-import-not-at-top

  photo = images.load_image(FLAGS.photo, FLAGS.size, min_side=inference.MIN_CONTENT_SIDE)
  model = _load_model()
  space, start, previous, rounds, started_from = _start(model)
  recorded = ((previous.provenance.get("session") or {}).get("preference")
              if previous is not None else None)
  if recorded:  # continue with the session's own settings; flags given now override them
    try:
      base = pref.config_from_record(recorded)
    except (cfglib.ConfigError, TypeError, ValueError) as e:
      raise cli.UsageError(f"--start {FLAGS.start}: its recorded preference settings are not "
                           f"readable ({e}); start a new session without --start") from None
    keep = {s.name: getattr(base, s.name) for s in cfglib.settings(pref.PreferenceConfig)
            if not cli.flag_given(s.cli_name)}
    pconfig = cli.config_from_flags(pref.PreferenceConfig, **keep)
  capacity = len(rounds) + FLAGS.rounds
  session = choices.Session.from_history(pconfig, start, rounds, k=FLAGS.k, capacity=capacity,
                                         key=jax.random.key(FLAGS.seed))
  provenance = (dict(previous.provenance) if previous is not None else _provenance(
      model, "from_choices", photo={"file": os.path.abspath(FLAGS.photo),
                                    "sha256": fileio.file_sha256(FLAGS.photo)},
      session={"k": FLAGS.k, "seed": FLAGS.seed, "start": start.tolist(),
               "preference": cfglib.to_dict(pconfig)},
      rounds=[], **({"started_from": started_from} if started_from else {})))
  state = {"profile": prof.StyleProfile(latent=space.to_latent(session.estimate), coords=session.estimate,
                                        space=space, strength=FLAGS.strength, provenance=provenance)}

  def render(coords):
    latents = space.to_latent(coords)
    batch = np.broadcast_to(photo[None], (len(coords),) + photo.shape)
    return np.asarray(model(model.params, batch, latents))

  def on_round(record):
    p = prof.append_round(state["profile"], record)
    p = prof.StyleProfile(latent=space.to_latent(session.estimate), coords=session.estimate,
                          space=space, strength=p.strength, provenance=p.provenance)
    prof.save_profile(FLAGS.out, p)
    state["profile"] = p

  sheet_dir = FLAGS.sheet_dir or os.path.splitext(FLAGS.out)[0] + "_rounds"
  frontend = _frontend(sheet_dir, photo)
  if rounds:
    print(f"continuing {FLAGS.start}: {len(rounds)} round(s) replayed")
  try:
    done = loop.run_loop(session, render, frontend, FLAGS.rounds, on_round)
  finally:
    frontend.close()
  if done == 0 and not rounds:
    prof.save_profile(FLAGS.out, state["profile"])
  final = render(session.estimate[None])[0]
  preview = os.path.splitext(FLAGS.out)[0] + "_preview.png"
  images.save_image(preview, images.side_by_side([photo, final]))
  print(f"{done} round(s) this session, {session.round} in all; wrote {FLAGS.out} and {preview}")


COMMANDS = {
    "from-images": cli.Subcommand("learn a profile from liked images", _define_from_images,
                                  from_images_main),
    "from-choices": cli.Subcommand("learn a profile from your picks among stylizations of your "
                                   "photo", _define_from_choices, from_choices_main),
}

if __name__ == "__main__":
  cli.run_subcommands(COMMANDS, __doc__)
