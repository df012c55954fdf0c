"""Blind A/B human evaluation: a static rating page for two methods' outputs, and its scoring.

  # A page of (up to) 40 pairs: the same inputs stylized by method A and method B
  python experiments/human_eval.py make --a runs/net/samples --b runs/gatys/outputs \
      --out eval/ [--pairs 40] [--seed 0] [--title "Which stylization do you prefer?"]
  # Send eval/index.html to raters (one file, works offline from file://); each exports results.json
  python experiments/human_eval.py score alice.json bob.json --key eval/key.json [--out score.json]

make: --a and --b are folders of images, or run directories (a folder with no
images of its own but a samples/ or else outputs/ subfolder with images uses
that subfolder; folders are not walked recursively). Pairs are the file names
without extension (stems) present in both; with --pairs N the first N of the
stems in a seeded random order (numpy default_rng(--seed)), else all of them
in that order. Which side A is on is drawn per pair from the same seed. The
page DIR/index.html holds only opaque pair ids and the two images of each
pair (re-encoded as PNG data URIs), never file or method names; the mapping
back (pair id, stem, side of A, source paths and SHA-256) is DIR/key.json,
which is for you, not the raters. The same inputs and seed give the same
bytes. A pair with an unreadable image is skipped with a warning on stderr
(the next stem takes its place). A DIR/key.json of another page is not
replaced without --overwrite (results made with it would become unscorable).

The page shows one pair at a time, large, side by side: "Left better" /
"Can't tell" / "Right better" buttons or keys (ArrowLeft or 1, 0 or Space,
ArrowRight or 2; Backspace or U goes back one pair), "Pair 3 of 12"
progress and an optional rater name. Choices are kept in the browser's
localStorage as they are made (a reload resumes at the first unrated pair),
and "Export results" downloads results.json (format: human_eval_page.py).

score: maps each choice back to A or B with the key (default: key.json beside
the first results file) and prints, per rater and pooled, the share of
non-tie choices preferring A (ties counted apart) with a Wilson score
interval (or --interval clopper-pearson, exact); --out also writes the
numbers as JSON. Results files may be given as arguments or with --results.

User errors (no matching images, malformed JSON, results of another page
than the key's, an --out that is a file where a folder is wanted or the
reverse) print one line `error: ...` and exit with status 2. make refuses
images larger than --max_pixels (the pair is skipped with a warning).
"""

from __future__ import annotations

import os
import sys

import cli
from cli import FLAGS, flags

from jaxstyle import fileio
from jaxstyle.errors import print_warning

import human_eval_lib as lib

DEFAULT_TITLE = "Which image do you prefer?"


# ----------------------------------------------------------------------------- make


def _define_make():
  flags.DEFINE_string("a", None, "Method A: a folder of images, or a run directory whose "
                      "samples/ (else outputs/) subfolder holds them.")
  flags.mark_flag_as_required("a")
  flags.DEFINE_string("b", None, "Method B: like --a; pairs are the image names (without "
                      "extension) found in both.")
  flags.mark_flag_as_required("b")
  flags.DEFINE_string("out", None, "Folder to write the page (index.html) and its key "
                      "(key.json, keep it from the raters) into; created if missing.")
  flags.mark_flag_as_required("out")
  flags.DEFINE_integer("pairs", None, "Number of pairs on the page, chosen by a seeded shuffle "
                       "of the matched names (default: all of them).", lower_bound=1)
  flags.DEFINE_integer("seed", 0, "Seed of the pair choice, their order and each pair's "
                       "left/right layout; the same inputs and seed give the same page and key.")
  flags.DEFINE_string("title", DEFAULT_TITLE, "Heading of the page (raters see it: do not name "
                      "the methods).")
  flags.DEFINE_integer("max_side", 1024, "Downscale images whose longer side exceeds this many "
                       "pixels before embedding them (0 = embed at full size).", lower_bound=0)
  flags.DEFINE_boolean("overwrite", False, "Replace an existing OUT/key.json that belongs to "
                       "another page (its results can no longer be scored).")
  cli.define_max_pixels()


def _make_main(argv):
  del argv
  fileio.check_output_dir(FLAGS.out, "--out")
  html, key = lib.build(FLAGS.a, FLAGS.b, seed=FLAGS.seed, n=FLAGS.pairs, title=FLAGS.title,
                        max_side=FLAGS.max_side, warn=print_warning)
  page_path = os.path.join(FLAGS.out, "index.html")
  key_path = os.path.join(FLAGS.out, "key.json")
  if os.path.exists(key_path) and not FLAGS.overwrite:
    try:
      old = lib.load_key(key_path)["page_id"]
    except lib.HumanEvalError:
      old = None
    if old != key["page_id"]:
      raise cli.UsageError(f"{key_path} is the key of another page ({old or 'unreadable'}); "
                           "results made with it need it: choose another --out, or pass "
                           "--overwrite to replace it")
  fileio.atomic_write_text(key_path, lib.dumps(key))
  fileio.atomic_write_text(page_path, html)
  size_kib = os.path.getsize(page_path) / 1024
  print(f"wrote {page_path} ({len(key['pairs'])} pairs, {size_kib:.0f} KiB, page id "
        f"{key['page_id']}) and its key {key_path} (keep the key from the raters)")


# ----------------------------------------------------------------------------- score


def _define_score():
  flags.DEFINE_multi_string("results", [], "A results.json exported from the page; repeat it, "
                            "or give the files as arguments.")
  flags.DEFINE_string("key", None, "The page's key.json (default: key.json beside the first "
                      "results file).")
  flags.DEFINE_enum("interval", "wilson", list(lib.INTERVALS), "Confidence interval of the "
                    "A-preference rate: wilson (score interval) or clopper-pearson (exact, "
                    "conservative).")
  flags.DEFINE_float("level", 0.95, "Confidence level of the interval, in (0, 1).")
  flags.DEFINE_string("out", None, "Also write the numbers (per rater and pooled) to this JSON "
                      "file.")


def _score_main(argv):
  files = list(argv[1:]) + list(FLAGS.results)
  if not files:
    raise cli.UsageError("give one or more results.json files (arguments or --results)")
  if not 0 < FLAGS.level < 1:
    raise cli.UsageError(f"--level={FLAGS.level}: must be between 0 and 1, e.g. 0.95")
  if FLAGS.out:
    fileio.check_output_file(FLAGS.out, "--out")
  key_path = FLAGS.key or os.path.join(os.path.dirname(os.path.abspath(files[0])), "key.json")
  key = lib.load_key(key_path)
  results = [(f, lib.load_results(f, key, key_path)) for f in files]
  report = lib.score(key, results, kind=FLAGS.interval, level=FLAGS.level, warn=print_warning)
  report["key"] = os.path.abspath(key_path)
  sys.stdout.write(lib.table(report))
  if FLAGS.out:
    fileio.atomic_write_text(FLAGS.out, lib.dumps(report))
    print(f"wrote {FLAGS.out}")


COMMANDS = {
    "make": cli.Subcommand("write a blind A/B rating page (index.html) and its key (key.json)",
                           _define_make, _make_main),
    "score": cli.Subcommand("A-preference rate with confidence interval from exported results",
                            _define_score, _score_main, positional=True),
}

if __name__ == "__main__":
  cli.run_subcommands(COMMANDS, doc=__doc__)
