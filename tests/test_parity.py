"""dpanet parity: an exact export passes, perturbed weights fail (exit 1), the saved reference
round-trips through Polygraphy's JSON, and mismatched references or candidates are refused."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from polygraphy.comparator import RunResults

from dpanet.cli import main
from dpanet.runtime.images import write_image
from dpanet.runtime.parity import TOLERANCES
from dpanet.runtime.pipeline import to_network
from dpanet.training.checkpoint import load_checkpoint

from runtime_cases import smooth_views, write_pair


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Two pairs of odd sizes, one with ground truth (NAME_S)."""
    folder = tmp_path_factory.mktemp("parity_pairs")
    write_pair(folder, "a", 37, 50, seed=1)
    write_pair(folder, "b", 24, 40, seed=2)
    write_image(folder / "b_S.png", smooth_views(24, 40, seed=9)[0], 8)
    return folder


def _edited(model, out, edit):
    proto = onnx.load(str(model))
    edit(proto)
    onnx.save(proto, str(out))
    return out


def _perturb(proto):
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) == 4:
            values = numpy_helper.to_array(init) * 1.05
            init.CopyFrom(numpy_helper.from_array(values.astype(np.float32), init.name))


def _metadata(key, value):
    def edit(proto):
        for entry in proto.metadata_props:
            if entry.key == f"dpanet.{key}":
                entry.value = value

    return edit


def _parity(*args) -> int:
    return main(["parity", *map(str, args)])


def test_exact_export_passes_and_perturbed_weights_fail(small_export, pairs, tmp_path, capsys):
    checkpoint, model = small_export
    perturbed = _edited(model, tmp_path / "perturbed.onnx", _perturb)
    report = tmp_path / "parity.md"
    assert _parity("--checkpoint", checkpoint, "--model", model, "--pairs", pairs, "--report", report) == 0
    capsys.readouterr()
    code = _parity("--checkpoint", checkpoint, "--model", model, "--model", perturbed, "--pairs", pairs,
                   "--report", report)  # fmt: skip
    assert code == 1
    data = json.loads(report.with_suffix(".json").read_text())
    exact, bad = data["candidates"]
    assert exact["passed"] and not bad["passed"]
    assert [p["pair"] for p in exact["pairs"]] == ["a", "b"]
    assert all(p["max_abs"] <= TOLERANCES["fp32"].atol for p in exact["pairs"])
    assert any(p["max_abs"] > TOLERANCES["fp32"].atol for p in bad["pairs"])
    truth = [p["psnr_truth"] for p in exact["pairs"]]
    assert truth[0] is None and truth[1] is not None  # ground truth only where the pair has it
    assert "| FAIL |" in report.read_text()
    for i, stem in ((1, "small"), (2, "perturbed")):
        assert (tmp_path / f"parity-{i}-{stem}.png").is_file()
    # a looser tolerance is honoured
    assert _parity("--checkpoint", checkpoint, "--model", perturbed, "--pairs", pairs,
                   "--atol", "1", "--min-psnr", "0") == 0  # fmt: skip


def test_saved_reference_round_trips_and_serves_a_machine_without_torch(
    small_export, pairs, tmp_path, capsys
):
    checkpoint, model = small_export
    saved = tmp_path / "ref.json"
    assert _parity("--checkpoint", checkpoint, "--save-reference", saved, "--pairs", pairs) == 0
    results = RunResults.load(str(saved))
    (name,) = results.keys()
    loaded = load_checkpoint(checkpoint)
    assert name == f"pytorch-fp32 channel_order=BGR sha256={loaded.sha256}"
    from dpanet.runtime.images import read_image

    left, right = read_image(pairs / "a_L.png"), read_image(pairs / "a_R.png")
    with torch.no_grad():
        expected = loaded.model(
            torch.from_numpy(to_network(left.pixels, "BGR")),
            torch.from_numpy(to_network(right.pixels, "BGR")),
        ).numpy()
    np.testing.assert_array_equal(results[name][0]["output"], expected)
    capsys.readouterr()
    report = tmp_path / "loaded.md"
    assert _parity("--load-reference", saved, "--model", model, "--pairs", pairs, "--report", report) == 0
    direct = tmp_path / "direct.md"
    assert _parity("--checkpoint", checkpoint, "--model", model, "--pairs", pairs, "--report", direct) == 0
    assert report.read_text() == direct.read_text().replace("direct-1", "loaded-1")


@pytest.mark.parametrize(
    "case, message",
    [
        ("other checkpoint", "made from checkpoint sha256 000000000000"),
        ("channel order", "expects RGB input, the reference is BGR"),
        ("other size", "pair 1 is 40x56 (padded) in the reference, 24x40 here"),
        ("not a reference", "not a Polygraphy RunResults JSON"),
        ("no reference", "give the reference"),
    ],
)
def test_mismatched_inputs_are_refused_with_one_line(small_export, pairs, tmp_path, capsys, case, message):
    checkpoint, model = small_export
    saved = tmp_path / "ref.json"
    assert _parity("--checkpoint", checkpoint, "--save-reference", saved, "-l", pairs / "a_L.png",
                   "-r", pairs / "a_R.png") == 0  # fmt: skip
    capsys.readouterr()
    reference = ["--load-reference", saved]
    images = ["-l", pairs / "a_L.png", "-r", pairs / "a_R.png"]
    if case == "other checkpoint":
        model = _edited(model, tmp_path / "other.onnx", _metadata("checkpoint_sha256", "0" * 64))
    elif case == "channel order":
        model = _edited(model, tmp_path / "rgb.onnx", _metadata("channel_order", "RGB"))
    elif case == "other size":
        images = ["-l", pairs / "b_L.png", "-r", pairs / "b_R.png"]
    elif case == "not a reference":
        reference = ["--load-reference", pairs / "a_L.png"]
    else:
        reference = []
    report = tmp_path / "report.md"
    assert _parity(*reference, "--model", model, *images, "--report", report) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpanet parity: error:") and message in err[0]
    assert not report.exists() and not report.with_suffix(".json").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None,
    reason="the tensorrt package is installed: this checks the skip without it",
)
def test_engine_without_tensorrt_is_skipped_with_the_reason(small_export, pairs, tmp_path, capsys):
    checkpoint, model = small_export
    engine = tmp_path / "model.plan"
    engine.write_bytes(b"engine")
    code = _parity("--checkpoint", checkpoint, "--model", model, "--engine", engine, "-l", pairs / "a_L.png",
                   "-r", pairs / "a_R.png")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "model.plan: skipped" in out and "skipped: TensorRT is needed" in out


def test_documented_tolerance_table_is_the_one_in_the_code():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "runtime.md").read_text()
    rows = re.findall(r"^\| (fp32|fp16|int8) \| ([0-9.e-]+) \| ([0-9.]+) \|$", text, flags=re.M)
    assert {p: (float(a), float(m)) for p, a, m in rows} == {
        p: (t.atol, t.min_psnr) for p, t in TOLERANCES.items()
    }
