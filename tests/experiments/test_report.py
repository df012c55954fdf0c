"""experiments/report.py: benchmark records and training runs to report.md with tables and PNGs.

Runs on the committed records of experiments/results/ and on small synthetic
records; the numbers in the tables are read back and compared with the JSON.
"""

import glob
import json
import os
import re
import struct

import pytest

from conftest import ROOT, run_experiment
from reporting import document, load, plots

RESULTS = os.path.join(ROOT, "experiments", "results")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- helpers


def parse_tables(md, heading):
  """The tables under Markdown heading ``heading`` (until the next heading of its level or above).

  Returns a list of (column headers, {row label: [cells]}).
  """
  level = len(heading) - len(heading.lstrip("#"))
  lines = md.splitlines()
  start = lines.index(heading) + 1
  end = next((i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])),
             len(lines))
  tables, current = [], None
  for line in lines[start:end]:
    if not line.startswith("|"):
      current = None
      continue
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    if current is None:
      current = (cells[1:], {})
      tables.append(current)
    elif not set(line) <= set("|:- "):
      current[1][cells[0]] = cells[1:]
  return tables


def rows_under(md, heading):
  """Every row of every table under ``heading``, merged: {label: [cells]}."""
  out = {}
  for _, rows in parse_tables(md, heading):
    out.update(rows)
  return out


def num(text):
  return float(text.split()[0])


def assert_png(path, min_bytes=5000):
  with open(path, "rb") as f:
    data = f.read()
  assert data[:8] == PNG_MAGIC, path
  width, height = struct.unpack(">II", data[16:24])
  assert len(data) > min_bytes and width > 200 and height > 200, (path, len(data), width, height)


def meta(kind="cpu", count=1, commit="abc123"):
  return {"date": "2026-12-01T00:00:00+00:00", "duration_s": 1.0,
          "machine": {"cpu_model": "Test CPU", "cores": 8},
          "git": {"commit": commit, "dirty": False},
          "versions": {"python": "3.11", "jax": "0.10.2", "jaxlib": "0.10.2", "flax": "0.12.8",
                       "optax": "0.2.8", "orbax.checkpoint": "0.12.8", "torch": None},
          "xla_flags": "--xla_foo=1", "devices": {"backend": kind, "kind": kind, "count": count}}


def vgg_record(scale=1.0, kind="cpu", count=1):
  sizes = [{"size": s, "batch": 1, "forward_median_ms": scale * s / 10, "forward_best_ms": scale * s / 11,
            "forward_gflops": 100.0 / scale, "forward_vs_matmul": 0.5 / scale,
            "fwd_bwd_median_ms": scale * s / 4, "fwd_bwd_gflops": 80.0 / scale,
            "fwd_bwd_vs_matmul": 0.4 / scale} for s in (256, 512)]
  return {"benchmark": "vgg", "config": {}, "meta": meta(kind, count),
          "results": {"matmul_f32": {"gflops": 200.0 / scale}, "sizes": sizes}}


SYNTHETIC = {
    "gatys": {"sizes": {"512": {"jax_f32_s_per_step": 0.5, "jax_f32_compile_s": 3.0, "torch_s_per_step": 0.8,
                                "ratio_jax_f32_over_torch": 0.625},
                        "256": {"jax_f32_s_per_step": 0.125, "torch_s_per_step": 0.25,
                                "ratio_jax_f32_over_torch": 0.5}}},
    "cgan": {"jax": {"steps_per_s": 40.0, "ms_per_step": 25.0, "setup": "shard_map_2dev",
                     "setups": {"jit": {"steps_per_s": 30.0, "devices": 1},
                                "shard_map_2dev": {"steps_per_s": 40.0, "devices": 2}}},
             "torch": {"steps_per_s": 20.0, "ms_per_step": 50.0, "setup": "2_threads"},
             "jax_over_torch": 2.0},
    "retrieval": {"sizes": [{"n": 1000, "seconds_median": 0.01, "seconds_all": [0.009, 0.01, 0.02],
                             "descriptors_per_s": 1e5, "matches_numpy": True}]},
    # the timing layout with a spread (benchmarks/timing.py)
    "stylizer": {"inference": [{"size": 256, "batch": 1,
                                "jaxstyle": {"median_ms": 80.0, "min_ms": 78.5, "max_ms": 90.25,
                                             "img_per_s": 12.5},
                                "twin": {"best": "eager_nchw_1t", "img_per_s": 10.0},
                                "jaxstyle_over_twin": 1.25}]},
    "brand_new": {"score": 0.75, "nested": {"ok": True, "per": [{"x": 3}]}, "name": "a|b"},
}


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
  out = tmp_path_factory.mktemp("real")
  files = sorted(glob.glob(os.path.join(RESULTS, "*.json")))
  path = document.write(files, [], str(out))
  with open(path, encoding="utf-8") as f:
    return out, f.read(), files


# ----------------------------------------------------------------------------- real records


def test_real_records_headers_and_tables(real_report):
  _, md, files = real_report
  for path in files:
    assert f"`{path}`" in md
  with open(os.path.join(RESULTS, "stylizer_speed.json")) as f:
    speed = json.load(f)
  header = rows_under(md, "### Input: stylizer_speed")
  assert header["git commit"][0].startswith(speed["meta"]["git"]["commit"])
  assert header["jax"] == [speed["meta"]["versions"]["jax"]]
  assert header["torch"] == [speed["meta"]["versions"]["torch"]]
  assert speed["meta"]["machine"]["cpu_model"] in header["machine"][0]
  assert header["XLA flags"] == [f"`{speed['meta']['xla_flags']}`"]

  rows = rows_under(md, "### stylizer")
  for e in speed["results"]["inference"]:
    p = f"{e['size']}px b{e['batch']}"
    assert num(rows[f"{p} jaxstyle ms"][0]) == pytest.approx(e["jaxstyle"]["median_ms"], rel=1e-3)
    assert num(rows[f"{p} PyTorch twin img/s"][0]) == pytest.approx(e["twin"]["img_per_s"], rel=1e-3)
    assert num(rows[f"{p} jaxstyle / TransformerNet"][0]) == pytest.approx(
        e["jaxstyle_over_transformer_net"], rel=1e-3)

  # One column per committed file holding a retrieval_quality record, in file order.
  rqs = []
  for path in files:
    with open(path) as f:
      data = json.load(f)
    records = data if isinstance(data, list) else data.get("records", [data])
    rqs += [r["results"] for r in records if r.get("benchmark") == "retrieval_quality"]
  assert len(rqs) >= 2  # retrieval_quality.json and the suite's record
  rows = rows_under(md, "### retrieval_quality")
  assert rows["chosen on dev images"] == [rq["chosen_on_image_half"]["variant"] for rq in rqs]
  for i, rq in enumerate(rqs):
    for variant, by_split in rq["scores"].items():
      assert num(rows[f"{variant} P@1"][i]) == pytest.approx(by_split["all"]["p_at_1"], rel=1e-3)
      assert num(rows[f"{variant} mAP"][i]) == pytest.approx(by_split["all"]["map"], rel=1e-3)

  with open(os.path.join(RESULTS, "stylizer_quality.json")) as f:
    summary = json.load(f)["results"]["summary"]
  rows = rows_under(md, "### stylizer_quality")
  for key, value in summary.items():
    assert num(rows[key][0]) == pytest.approx(value, rel=1e-3), key


def test_real_personalize_files_side_by_side(real_report):
  _, md, _ = real_report
  cols, rows = parse_tables(md, "### personalize")[0]
  # Every committed file with a personalize record, in file order (the suite's is a quick run).
  names = ("personalize", "personalize_first_pass_settings", "personalize_heldout_mean",
           "personalize_ideal")
  assert cols[:4] == [f"{n} (cpu)" for n in names]
  assert cols[4:] == ["suite_cpu_full (cpu)", "suite_cpu_quick (cpu)"]
  for i, name in enumerate(names):
    with open(os.path.join(RESULTS, f"{name}.json")) as f:
      r = json.load(f)["results"]
    gp = r["summary"]["gp"]
    for user in ("noiseless", "noisy"):
      for n in (5, 10, 20):
        cell = rows[f"gp {user}: median distance @ round {n}"][i]
        assert num(cell) == pytest.approx(gp[user]["median"][n], rel=1e-3)
    assert num(rows["tau (noisy user)"][i]) == pytest.approx(r["tau"], rel=1e-3)
  # The first pass and the posterior-mean side of the shown-estimate change ran gp only.
  assert rows["random noisy: best-pick rate"][1] == rows["random noisy: best-pick rate"][2] == "–"
  goals = rows_under(md, "#### goals")
  assert goals["noiseless_round10_le_0.5"][:5] == ["yes"] * 5
  assert goals["noisy_rounds_not_below"][3] == "7, 8, 13, 14, 17"  # the ideal-point run
  assert goals["noisy_rounds_not_below"][4] == "5, 6, 7, 8, 9"  # the full suite's (shown estimate)


def test_real_records_plots(real_report):
  out, md, _ = real_report
  links = re.findall(r"!\[[^]]*\]\((plots/[^)]+\.png)\)", md)
  assert {"plots/personalize_curves.png", "plots/retrieval_quality_p_at_k.png",
          "plots/stylizer_throughput.png"} <= set(links)
  for rel in links:
    assert_png(os.path.join(out, rel))


def test_free_form_results_are_flattened(real_report):
  _, md, _ = real_report
  assert "## Other results" in md
  rows = rows_under(md, "### personalize_dev")
  with open(os.path.join(RESULTS, "personalize_dev.json")) as f:
    dev = json.load(f)
  assert num(rows["variants.base.noiseless.geomean_r5_20"][0]) == pytest.approx(
      dev["variants"]["base"]["noiseless"]["geomean_r5_20"])


def test_same_inputs_same_bytes(real_report, tmp_path):
  out, md, files = real_report
  path = document.write(files, [], str(tmp_path))
  with open(path, encoding="utf-8") as f:
    assert f.read() == md
  for png in glob.glob(os.path.join(out, "plots", "*.png")):
    with open(png, "rb") as a, open(tmp_path / "plots" / os.path.basename(png), "rb") as b:
      assert a.read() == b.read(), png


# ----------------------------------------------------------------------------- synthetic records


def _write(path, obj):
  path.write_text(json.dumps(obj))
  return str(path)


def test_two_files_side_by_side_one_column_each(tmp_path):
  cpu = _write(tmp_path / "before.json", vgg_record(1.0))
  gpu = _write(tmp_path / "after.json", vgg_record(0.5, "NVIDIA H200", 1))
  md = open(document.write([cpu, gpu], [], str(tmp_path / "out")), encoding="utf-8").read()
  ((cols, rows),) = parse_tables(md, "### vgg")
  assert cols == ["before (cpu)", "after (NVIDIA H200)"]
  for i, scale in enumerate((1.0, 0.5)):
    assert num(rows["512px b1 forward ms"][i]) == pytest.approx(scale * 51.2)
    assert num(rows["256px b1 fwd+bwd GFLOP/s"][i]) == pytest.approx(80.0 / scale)
    assert num(rows["matmul f32 GFLOP/s"][i]) == pytest.approx(200.0 / scale)
  assert_png(tmp_path / "out" / "plots" / "vgg_throughput.png")
  assert "vgg_scaling" not in md  # one device each: nothing to scale


def test_suite_and_list_files_every_renderer(tmp_path):
  records = [{"benchmark": name, "config": {}, "results": results, "meta": meta()}
             for name, results in SYNTHETIC.items()]
  suite = _write(tmp_path / "suite.json", {"suite": "jaxstyle-benchmarks", "records": records})
  listed = _write(tmp_path / "listed.json", [vgg_record(1.0, "TPU v5", 1), vgg_record(0.5, "TPU v5", 4),
                                             {**records[0], "results": {"sizes": "oops"}}])
  md = open(document.write([suite, listed], [], str(tmp_path / "out")), encoding="utf-8").read()

  rows = rows_under(md, "### gatys")
  assert num(rows["256px jaxstyle f32 s/step"][0]) == 0.125
  assert num(rows["512px PyTorch s/step (fastest setup)"][0]) == 0.8
  assert num(rows["512px jaxstyle f32 / PyTorch time"][0]) == 0.625
  assert list(rows).index("256px jaxstyle f32 s/step") < list(rows).index("512px jaxstyle f32 s/step")
  assert "layout not recognised by the gatys renderer" in md  # the broken record: all values shown
  assert rows["sizes"] == ["–", "oops"]

  rows = rows_under(md, "### cgan")
  assert num(rows["jaxstyle / PyTorch steps/s"][0]) == 2.0
  assert num(rows["jaxstyle shard_map_2dev steps/s"][0]) == 40.0
  assert_png(tmp_path / "out" / "plots" / "cgan_scaling.png")  # setups on 1 and 2 devices

  rows = rows_under(md, "### retrieval")
  assert rows["n=1000 search s"] == ["0.01 (0.009–0.02)"]
  assert rows["n=1000 matches NumPy"] == ["yes"]

  rows = rows_under(md, "#### inference")
  assert rows["256px b1 jaxstyle ms"] == ["80 (78.5–90.25)"]
  assert num(rows["256px b1 jaxstyle / PyTorch twin"][0]) == 1.25

  rows = rows_under(md, "### brand_new")  # no renderer: the generic one
  assert rows["score"] == ["0.75"] and rows["nested.ok"] == ["yes"]
  assert rows["nested.per[0].x"] == ["3"] and rows["name"] == ["a\\|b"]

  (cols, rows), = parse_tables(md, "### vgg")
  assert cols == ["listed (TPU v5) #1", "listed (TPU v5) #2"]
  assert_png(tmp_path / "out" / "plots" / "vgg_scaling.png")  # 1 and 4 TPU devices
  header = rows_under(md, "### Input: suite")
  assert header["records"] == [", ".join(SYNTHETIC)]
  assert header["devices"] == ["cpu × 1 (cpu)"] and header["torch"] == ["absent"]


def test_training_runs_and_cli(tmp_path):
  runs = []
  for name, scale in (("run_a", 1.0), ("run_b", 1e4)):
    run = tmp_path / name
    run.mkdir()
    lines = [json.dumps({"step": s, "d_loss": scale / s, "g_loss": 1.0 + 1.0 / s, "fid": 100.0 - s,
                         "eval_style/wave": 2.0 * s, "eval_style/udnie": float(s)}) for s in range(1, 51)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    runs.append(str(run))
  rec = _write(tmp_path / "r.json", vgg_record())
  out = tmp_path / "report"
  proc = run_experiment("report.py", rec, "--runs", ",".join(runs), "--out", out)
  assert proc.stdout.strip() == str(out / "report.md")
  md = (out / "report.md").read_text()
  assert "## Training runs" in md and "### vgg" in md
  rows = rows_under(md, "### run_b")
  assert num(rows["d_loss"][0]) == pytest.approx(1e4 / 50) and num(rows["fid"][1]) == 50
  for i, name in enumerate(("run_a", "run_b")):
    assert f"(plots/run{i + 1}_{name}.png)" in md
    assert_png(out / "plots" / f"run{i + 1}_{name}.png")
  run = load.read_run(runs[1])
  assert plots.families(run) == {"loss": ["d_loss", "g_loss"], "fid": ["fid"],
                                 "eval_style": ["eval_style/wave", "eval_style/udnie"]}
  series = run.series()
  assert plots.log_scale(series["d_loss"][1] + series["g_loss"][1])  # the loss panel spans 1e4x
  assert not plots.log_scale(series["fid"][1]) and not plots.log_scale(series["d_loss"][1])


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("42", "expected a benchmark record"),
    ('{"benchmark": "vgg", "results": [1, 2]}', "no \"results\" object"),
    ('{"suite": "jaxstyle-benchmarks", "records": []}', "non-empty \"records\" list"),
    ('[{"benchmark": "vgg", "results": {}}, {"x": 1}]', "item [1] is not a benchmark record"),
])
def test_malformed_files_are_named(tmp_path, content, problem):
  path = tmp_path / "bad.json"
  path.write_text(content)
  with pytest.raises(load.ReportInputError) as e:
    load.read_source(str(path))
  assert str(path) in str(e.value) and problem in str(e.value)


def _one_error_line(proc, *words):
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
  for w in words:
    assert str(w) in lines[0], (w, lines[0])


def test_cli_errors_one_line_exit_2(tmp_path):
  bad = tmp_path / "broken.json"
  bad.write_text('{"benchmark": "vgg", "results": ')
  good = _write(tmp_path / "good.json", vgg_record())
  out = tmp_path / "out"
  _one_error_line(run_experiment("report.py", good, bad, "--out", out, check=False), bad, "not valid JSON")
  assert not (out / "report.md").exists()
  _one_error_line(run_experiment("report.py", tmp_path / "missing.json", "--out", out, check=False),
                  "missing.json", "no such file")
  _one_error_line(run_experiment("report.py", good, "--runs", tmp_path, "--out", out, check=False),
                  "no metrics.jsonl")
  _one_error_line(run_experiment("report.py", good, check=False), "--out")


# ----------------------------------------------------------------------------- headline


def _time_to_quality_records():
  gq = {"time_to_quality": {
      "size": 512, "target_loss": 123.0, "parity": {"rel_diff_loss0": 1e-7},
      "torch": {"best": "compile_nchw_2t", "steps": 300, "time_s": 100.0, "median_step_s": 0.33},
      "jax": {"adam": {"steps_to_reach": 300, "time_to_reach_s": 110.0, "median_step_s": 0.36,
                       "time_ratio": 1.1, "goal_time_ratio": 0.5},
              "adam_ms2": {"steps_to_reach": 350, "time_to_reach_s": 80.0, "median_step_s": 0.3,
                           "time_ratio": 0.8, "goal_time_ratio": 0.5},
              "lbfgs": {"steps_to_reach": None, "time_ratio": None}}},
        "quality": {"pairs": [{"content": "cat.png", "style": "wave.jpg", "settings": {
            "adam": {"final": {"loss": 5.0, "content": 2.0, "style": 300.0, "tv": 0.1}}}}]}}
  final = {"step": 6000, "oracle_accuracy": 0.97, "fid_ratio": 2.5}
  curve = [{"step": k, "train_wall_s": 0.1 * k, "oracle_accuracy": k / 6200, "fid_ratio": 12000 / k}
           for k in (1000, 3000, 6000)]
  cq = {"targets": {"oracle_accuracy": 0.95, "fid_ratio": 3.0}, "fid_floor": 2.2,
        "jax": {"setup": "shard_map_2dev", "steps_per_s": 10.0, "step_to_accuracy": 3000,
                "time_to_accuracy_s": 300.0, "step_to_fid": 5000, "time_to_fid_s": 500.0,
                "final": final, "curve": curve},
        "torch": {"setup": "eager_nchw_2t", "steps_per_s": 8.0, "step_to_accuracy": 3000,
                  "time_to_accuracy_s": 375.0, "step_to_fid": 6000, "time_to_fid_s": 750.0,
                  "final": dict(final, oracle_accuracy=0.96), "curve": curve},
        "time_to_accuracy_s_jax_over_torch": 0.8, "time_to_fid_s_jax_over_torch": 2 / 3}
  return [{"benchmark": name, "config": {}, "meta": meta(), "results": res}
          for name, res in (("gatys_quality", gq), ("cgan_quality", cq), ("cgan", SYNTHETIC["cgan"]))]


def test_headline_rows_come_from_the_records(tmp_path):
  with open(os.path.join(RESULTS, "stylize_tradeoff.json"), encoding="utf-8") as f:
    tradeoff = json.load(f)
  (chosen,) = [s for s in tradeoff["results"]["summary"] if s["beta"] == 1e-2 and s["steps"] == 300]
  suite = {"suite": "jaxstyle-benchmarks", "version": 1, "records": _time_to_quality_records()}
  files = []
  for name, obj in (("suite.json", suite), ("tradeoff.json", tradeoff)):
    files.append(str(tmp_path / name))
    with open(files[-1], "w", encoding="utf-8") as f:
      json.dump(obj, f)
  path = document.write(files, [], str(tmp_path / "out"))
  with open(path, encoding="utf-8") as f:
    md = f.read()
  head = rows_under(md, "## Headline")
  assert md.index("## Headline") < md.index("## Inputs")
  # Time to quality: the fastest jaxstyle setting that reached the target, jaxstyle over PyTorch.
  assert head["Gatys time to twin's 300-step loss 512px: jaxstyle/PyTorch (goal ≤ 0.5)"][0] == "0.8"
  assert head["Gatys time to twin's loss 512px: fastest jaxstyle setting"][0] == "adam_ms2"
  assert num(head["cGAN time to 95% oracle accuracy: jaxstyle/PyTorch"][0]) == 0.8
  assert num(head["cGAN time to FID ≤ 3× floor: jaxstyle/PyTorch"][0]) == pytest.approx(2 / 3, rel=1e-3)
  assert num(head["cGAN train step: jaxstyle speed / PyTorch best"][0]) == 2.0
  # One column per file; the trade-off's default β at its most steps, from the real record.
  row = head["Gatys β=0.01, 300 steps: style distance ÷ (median)"]
  assert row[0] == "–" and num(row[1]) == pytest.approx(chosen["style_reduction_median"], rel=1e-3)
  # The new benchmarks' own sections.
  ttq = rows_under(md, "#### time to the PyTorch twin's quality")
  assert num(ttq["jaxstyle adam_ms2: s to target"][0]) == 80.0
  assert_png(str(tmp_path / "out" / "plots" / "cgan_quality_time_to_quality.png"))
  assert "](plots/cgan_quality_time_to_quality.png)" in md
  cgan_q = rows_under(md, "### cgan_quality")
  assert num(cgan_q["PyTorch s to target FID"][0]) == 750.0
  assert num(cgan_q["jaxstyle final oracle_accuracy"][0]) == 0.97


def test_vgg_throughput_points_hold_both_sides():
  """The plot's title promises the peers as squares: the twin's fastest variant is a point too."""
  record = vgg_record(1.0)
  for e in record["results"]["sizes"]:
    e["torch_forward_median_ms"], e["torch_fwd_bwd_median_ms"] = e["size"] / 20, e["size"] / 5
  pts = plots._vgg(record["results"])  # pylint: disable=protected-access
  by = {(p.series, p.x): p for p in pts}
  assert by[("jaxstyle forward b1", 512)].y == pytest.approx(1e3 / 51.2) and not by[
      ("jaxstyle forward b1", 512)].peer
  assert by[("PyTorch forward b1 (fastest setup)", 512)].y == pytest.approx(1e3 / 25.6)
  assert by[("PyTorch fwd+bwd b1 (fastest setup)", 256)].y == pytest.approx(1e3 / 51.2)
  assert all(p.peer for p in pts if p.series.startswith("PyTorch"))
  assert len(pts) == 8
