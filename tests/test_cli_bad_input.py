"""Issue 14: bad input gives one line `dpanet CMD: error: ...`, a non-zero exit, no traceback, no
partial output and never a wrong result with exit 0. One parametrized test per group of the issue:
each makes the bad file, runs the command, and checks the exit code, the one line and the target."""

from __future__ import annotations

import errno
import json
import os
import pathlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from dpanet.cli import main

from fake_data import make_dpdd, release_like_state


@pytest.fixture
def read_only(monkeypatch):
    """Make a read-only folder. Root ignores permission bits, so for root ``os.access`` (what the
    commands check before any work) answers for that folder as it would for a user."""

    def make(folder: Path) -> Path:
        folder.mkdir(mode=0o500)
        if os.geteuid() == 0:
            real = os.access
            locked = folder.resolve()

            def access(path, mode, **kwargs):
                if mode & os.W_OK and Path(path).resolve() == locked:
                    return False
                return real(path, mode, **kwargs)

            monkeypatch.setattr(os, "access", access)
        return folder

    return make


def run(capfd, *argv) -> tuple[int, list[str]]:
    """Exit code and stderr lines (file descriptor level: native libraries' messages count)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors exit 2
        code = exc.code
    return code, capfd.readouterr().err.strip().splitlines()


def assert_one_line(code, lines, message, expected_code=1):
    assert code == expected_code, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("dpanet ") and message in lines[0], lines
    assert "Traceback" not in lines[0]


def view(path: Path, seed: int = 0, shape=(16, 16, 3)) -> Path:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, size=shape, endpoint=True).astype(np.uint8))
    return path


def no_leftovers(folder: Path, *expected: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


# --- wrong results with exit 0 ----------------------------------------------------------------------


def _truncated_jpeg(tmp_path):
    full = view(tmp_path / "full.jpg", shape=(64, 64, 3)).read_bytes()
    (tmp_path / "full.jpg").unlink()
    (tmp_path / "l.jpg").write_bytes(full[: len(full) // 2])
    return tmp_path / "l.jpg", view(tmp_path / "r.jpg", 1, (64, 64, 3))


def _png_pair(tmp_path):
    return view(tmp_path / "l.png"), view(tmp_path / "r.png", 1)


def _nan_weights(tmp_path, checkpoint):
    payload = torch.load(checkpoint, weights_only=True)
    payload["state_dict"]["head.2.bias"][0] = float("nan")
    payload["state_dict"]["head.0.weight"][0, 0, 0, 0] = float("inf")
    torch.save(payload, tmp_path / "nan.pt")
    return tmp_path / "nan.pt"


@pytest.mark.parametrize(
    "case, message",
    [
        ("truncated jpeg", "l.jpg: truncated or corrupt JPEG (libjpeg: Premature end of JPEG file)"),
        (
            "non-finite weights",
            "nan.pt: non-finite weights (NaN or Inf) in 2 tensor(s): head.0.weight, head.2.bias",
        ),
        ("non-finite output", "the network's output has NaN or Inf values; nothing written"),
        ("output is the left view", "l.png: is an input of this command; refusing to write over it"),
        ("output links to the right view", "link.png: is an input of this command"),
    ],
)
def test_wrong_results_are_errors(tmp_path, checkpoint, capfd, monkeypatch, case, message):
    left, right = _truncated_jpeg(tmp_path) if case == "truncated jpeg" else _png_pair(tmp_path)
    out, weights = tmp_path / "out.png", checkpoint
    if case == "non-finite weights":
        weights = _nan_weights(tmp_path, checkpoint)
    if case == "non-finite output":
        from dpanet.training.inference import TorchBackend

        monkeypatch.setattr(TorchBackend, "__call__", lambda self, a, b: np.full_like(a, np.nan))
    if case == "output is the left view":
        out = left
    if case == "output links to the right view":
        out = tmp_path / "link.png"
        out.symlink_to(right)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, lines = run(capfd, "deblur", "-l", left, "-r", right, "-o", out, "--checkpoint", weights)
    assert_one_line(code, lines, message)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_convert_official_refuses_writing_over_its_source(tmp_path, capfd):
    source = tmp_path / "final.pth"
    torch.save({"G_state_dict": {"module.out.0.weight": torch.zeros(1)}}, source)
    before = source.read_bytes()
    assert_one_line(*run(capfd, "convert-official", source, source), "final.pth: is an input of this command")
    assert source.read_bytes() == before


def _release_state(nan: bool = False) -> dict:
    """The release's layout, zeros (``nan``: one Inf in out.2.bias)."""
    state = release_like_state()
    if nan:
        state["module.out.2.bias"][1] = float("inf")
    return {"G_state_dict": state}


def test_convert_official_refuses_non_finite_weights_naming_the_tensor(tmp_path, capfd):
    source = tmp_path / "final.pth"
    torch.save(_release_state(nan=True), source)
    code, lines = run(capfd, "convert-official", source, tmp_path / "ours.pt")
    assert_one_line(code, lines, "final.pth: non-finite weights (NaN or Inf) in 1 tensor(s): out.2.bias")
    no_leftovers(tmp_path, "final.pth")


@pytest.mark.parametrize("writer", ["deblur", "convert-official", "export"])
def test_replaced_outputs_keep_their_mode_and_links(tmp_path, checkpoint, capfd, monkeypatch, writer):
    """The output policy (dpanet/files.py): replace, keeping the mode; a symlink keeps the link."""
    if writer == "export":  # the policy is the writer's, not the tracer's: a tiny stand-in graph
        import dpanet.export.exporter as exporter

        monkeypatch.setattr(
            exporter, "export_model", lambda *a, **k: helper.make_model(helper.make_graph([], "g", [], []))
        )
    left, right = _png_pair(tmp_path)
    release = tmp_path / "final.pth"
    if writer == "convert-official":
        torch.save(_release_state(), release)
    suffix = {"deblur": ".png", "convert-official": ".pt", "export": ".onnx"}[writer]
    target = tmp_path / f"target{suffix}"
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = tmp_path / f"link{suffix}"
    link.symlink_to(target)
    for out in (target, link):
        target.write_bytes(b"old")
        argv = {
            "deblur": ["deblur", "-l", left, "-r", right, "-o", out, "--checkpoint", checkpoint],
            "convert-official": ["convert-official", release, out],
            "export": ["export", "--checkpoint", checkpoint, "-o", out],
        }[writer]
        assert run(capfd, *argv)[0] == 0
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert target.read_bytes() != b"old"
        assert target.stat().st_mode & 0o777 == 0o600
    sources = [release.name] if writer == "convert-official" else []
    no_leftovers(tmp_path, "l.png", "r.png", target.name, link.name, *sources)


def _onnx_model(tmp_path, inputs=("left", "right"), outputs=("output",), config="{}", channels=3) -> Path:
    """A one-node graph carrying dpanet.* metadata, with the interface asked for."""
    ports = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", channels, "H", "W"]) for n in inputs]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", channels, "H", "W"]) for n in outputs]
    nodes = [helper.make_node("Identity", [inputs[0]], [o]) for o in outputs]
    model = helper.make_model(
        helper.make_graph(nodes, "g", ports, outs), opset_imports=[helper.make_opsetid("", 19)]
    )
    metadata = {"config": config, "channel_order": "BGR", "flavor": "portable", "precision": "fp32"}
    onnx.helper.set_model_props(model, {f"dpanet.{k}": v for k, v in metadata.items()})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "interface, message",
    [
        ({"inputs": ("x",), "outputs": ("y",)}, "m.onnx: inputs are x; a DPANet model has left, right"),
        ({"inputs": ("a", "b")}, "m.onnx: inputs are a, b; a DPANet model has left, right"),
        ({"inputs": ("left", "right", "extra")}, "inputs are left, right, extra"),
        ({"outputs": ("out",)}, "m.onnx: outputs are out; a DPANet model has output"),
        ({"config": "{not json"}, "m.onnx: metadata dpanet.config is not valid JSON"),
        ({"channels": 1}, "m.onnx: input left has 1 channel(s), its metadata says 3"),
        (
            {"config": json.dumps({"out_channels": 1})},
            "m.onnx: output output has 3 channel(s), its metadata says 1",
        ),
    ],
    ids=[
        "one-node",
        "renamed inputs",
        "third input",
        "renamed output",
        "invalid JSON",
        "channels",
        "output channels",
    ],
)
def test_onnx_models_whose_interface_is_not_dpanet_are_refused(tmp_path, capfd, interface, message):
    model = _onnx_model(tmp_path, **interface)
    left, right = _png_pair(tmp_path)
    code, lines = run(capfd, "deblur", "-l", left, "-r", right, "-o", tmp_path / "o.png", "--model", model)
    assert_one_line(code, lines, message)
    no_leftovers(tmp_path, "l.png", "r.png", "m.onnx")


# --- tracebacks -------------------------------------------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("destination", ["folder", "missing folder", "full disk", "read-only"])
def test_convert_official_destination_problems(
    tmp_path, checkpoint, capfd, monkeypatch, read_only, destination
):
    source = tmp_path / "final.pth"
    torch.save(_release_state(), source)
    target = tmp_path / "ours.pt"
    message = {
        "folder": "is a folder (give a file name)",
        "missing folder": "does not exist",
        "full disk": "ours.pt: no space left on device",
        "read-only": "is not writable",
    }[destination]
    if destination == "folder":
        target = tmp_path
    if destination == "missing folder":
        target = tmp_path / "nowhere" / "ours.pt"
    if destination == "full disk":
        monkeypatch.setattr(pathlib.Path, "write_bytes", _no_space)
    if destination == "read-only":
        target = read_only(tmp_path / "locked") / "ours.pt"
    assert_one_line(*run(capfd, "convert-official", source, target), message)
    assert not target.is_file()
    assert not [p for p in tmp_path.rglob(".*")], "temporary file left behind"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda p: p["state_dict"].__setitem__("head.2.bias", "text"),
            "state_dict entry 'head.2.bias' is of type str, not a tensor",
        ),
        (lambda p: p.__setitem__("metadata", [1, 2]), "metadata is of type list, not a table"),
    ],
    ids=["non-tensor weight", "non-dict metadata"],
)
def test_malformed_checkpoint_of_our_format(tmp_path, checkpoint, capfd, change, message):
    payload = torch.load(checkpoint, weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "bad.pt")
    out = tmp_path / "m.onnx"
    assert_one_line(
        *run(capfd, "export", "--checkpoint", tmp_path / "bad.pt", "-o", out), f"bad.pt: {message}"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["--max-radius", "nan"], "argument --max-radius: must be a finite number above 0, got 'nan'", 2),
        (["--max-radius", "inf"], "argument --max-radius: must be a finite number above 0, got 'inf'", 2),
        (["--count", "0"], "argument --count: must be at least 1", 2),
        (["--seed", "-1"], "argument --seed: must be at least 0", 2),
        (["--size", "32x48"], "--size 32x48: this command renders square images", 1),
        (["--size", "12"], "--size 12x12: height and width must be multiples of 8", 1),
        ("file", "is a file, not a folder", 1),
        ("full disk", "no space left on device", 1),
    ],
)
def test_synth_bad_options_and_outputs(tmp_path, capfd, monkeypatch, args, message, code):
    out = tmp_path / "set"
    if args == "file":
        out.write_text("mine")
    if args == "full disk":
        monkeypatch.setattr(pathlib.Path, "write_bytes", _no_space)
    extra = args if isinstance(args, list) else []
    lines = run(capfd, "synth", "--out", out, "--count", "2", "--size", "16", *extra)
    assert_one_line(*lines, message, code)
    no_leftovers(tmp_path, *(["set"] if args == "file" else []))  # no empty folders either


def test_synth_into_a_read_only_folder(tmp_path, capfd, read_only):
    lines = run(capfd, "synth", "--out", read_only(tmp_path / "locked"), "--count", "1", "--size", "16")
    assert_one_line(*lines, "is not writable")


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[train]\nthreads = -5", "[train] threads: -5 is negative"),
        ("[train]\nlr = nan", "[train] lr: nan is not a finite number"),
        ("[train]\nlr_gamma = inf", "[train] lr_gamma: inf is not a finite number"),
        ("[output]\nlog_every = 0", "log_every and checkpoint_every at least 1"),
        ('[output]\ndir = "FILE/run"', "FILE is a file, not a folder"),
        ('[model]\ninit_from = "nowhere.pt"', "[model] init_from: nowhere.pt: no such file"),
        ('[validation]\nevery = 1\nkind = "dpdd"\nroot = "none"', "[validation] root: none: no such folder"),
        # issue 23: a NaN or Inf in the scene recipe reached numpy's draws (OverflowError)
        ("[data.recipe]\nmax_radius = nan", "[data.recipe]: max_radius: nan is not a finite number"),
        (
            "[data.recipe]\nf_number = [1.4, inf]",
            "[data.recipe]: f_number: (1.4, inf) is not a finite number",
        ),
        (
            '[model]\ninit_from = "run/model.pt"\n[output]\ndir = "run"',
            "run/model.pt: is an input of this command",
        ),
    ],
)
def test_train_refuses_a_bad_configuration_before_any_work(tmp_path, capfd, monkeypatch, toml, message):
    monkeypatch.chdir(tmp_path)
    Path("FILE").write_text("mine")
    Path("run").mkdir()
    Path("run/model.pt").write_text("the weights to start from")
    import dpanet.training.trainer as trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("training started"))
    Path("c.toml").write_text('[data]\nkind = "synthetic"\ncount = 4\nsize = 16\n' + toml + "\n")
    assert_one_line(*run(capfd, "train", "--config", "c.toml"), message)
    no_leftovers(tmp_path, "FILE", "c.toml", "run")
    no_leftovers(tmp_path / "run", "model.pt")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["model-info", "--width", "0"], "argument --width: must be at least 1, got '0'"),
        (["model-info", "--size", "abc"], "argument --size: size must look like 256x256 (HxW), got 'abc'"),
        (["bench", "model", "--width", "-2"], "argument --width: must be at least 1"),
        (["bench", "ops", "--threads", "0"], "argument --threads: must be at least 1"),
        (["evaluate", "--data", ".", "--limit", "-1"], "argument --limit: must be at least 0"),
    ],
)
def test_impossible_numbers_are_usage_errors(capfd, argv, message):
    assert_one_line(*run(capfd, *argv), message, 2)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "wrapped by the exporter"])
def test_export_interrupted_while_tracing_exits_130(tmp_path, checkpoint, capfd, monkeypatch, wrapped):
    def interrupted(*args, **kwargs):
        if not wrapped:
            raise KeyboardInterrupt
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Failed to export the model with torch.export") from exc

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    out = tmp_path / "m.onnx"
    code, lines = run(capfd, "export", "--checkpoint", checkpoint, "-o", out)
    assert (code, lines) == (130, ["dpanet export: interrupted"])
    no_leftovers(tmp_path)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("when", ["deblurring", "writing"])
def test_deblur_interrupted_leaves_nothing(tmp_path, checkpoint, capfd, monkeypatch, when):
    from dpanet.training.inference import TorchBackend

    if when == "deblurring":
        monkeypatch.setattr(TorchBackend, "__call__", _interrupt)
    else:  # inside the atomic write: its temporary file must go too
        monkeypatch.setattr(pathlib.Path, "write_bytes", _interrupt)
    left, right = _png_pair(tmp_path)
    code, lines = run(
        capfd, "deblur", "-l", left, "-r", right, "-o", tmp_path / "o.png", "--checkpoint", checkpoint
    )
    assert (code, lines) == (130, ["dpanet deblur: interrupted"])
    no_leftovers(tmp_path, "l.png", "r.png")


def test_deblur_out_of_memory_is_one_line_with_the_tile_hint(tmp_path, checkpoint, capfd, monkeypatch):
    from dpanet.training.inference import TorchBackend

    def no_memory(*args, **kwargs):
        raise MemoryError("modulated_deform_conv2d: out of memory for its workspace of 9000 MiB")

    monkeypatch.setattr(TorchBackend, "__call__", no_memory)
    left, right = _png_pair(tmp_path)
    out = tmp_path / "o.png"
    code, lines = run(capfd, "deblur", "-l", left, "-r", right, "-o", out, "--checkpoint", checkpoint)
    assert_one_line(code, lines, "out of memory: modulated_deform_conv2d: out of memory for its workspace", 1)
    assert "--tile HxW" in lines[0]
    no_leftovers(tmp_path, "l.png", "r.png")


# --- messages that mislead --------------------------------------------------------------------------


class _Code:
    """Not a tensor: a weights-only load refuses the pickle."""


def _bad_checkpoint(tmp_path, kind, checkpoint):
    path = tmp_path / "c.pt"
    if kind == "text":
        path.write_text("these are not weights\n")
    elif kind == "empty":
        path.touch()
    elif kind == "pickle with code":
        torch.save({"object": _Code()}, path)
    elif kind == "folder":
        path.mkdir()
    else:  # damaged archive
        path.write_bytes(checkpoint.read_bytes()[:1000])
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("text", "c.pt: not a PyTorch checkpoint (neither a torch.save archive nor a pickle)"),
        ("empty", "c.pt: file is empty"),
        (
            "pickle with code",
            "c.pt: holds Python objects besides tensors and plain values: not a checkpoint this tool accepts",
        ),
        ("folder", "c.pt: is a folder, not a checkpoint file"),
        ("damaged", "c.pt: damaged or not a PyTorch checkpoint"),
    ],
)
def test_checkpoint_messages_say_what_the_file_is(tmp_path, checkpoint, capfd, kind, message):
    path = _bad_checkpoint(tmp_path, kind, checkpoint)
    for argv in (
        ["export", "--checkpoint", path, "-o", tmp_path / "m.onnx"],
        ["convert-official", path, tmp_path / "ours.pt"],
    ):
        code, lines = run(capfd, *argv)
        assert_one_line(code, lines, message)
        assert "weights_only" not in lines[0]
    no_leftovers(tmp_path, "c.pt")


def test_reconverting_a_converted_file_says_so(tmp_path, checkpoint, capfd):
    code, lines = run(capfd, "convert-official", checkpoint, tmp_path / "again.pt")
    assert_one_line(code, lines, "small.pt: already converted: this is a DPANet checkpoint of this project")
    no_leftovers(tmp_path)


def _grey_alpha_png(path: Path) -> Path:
    import skimage.io

    skimage.io.imsave(path, np.zeros((16, 16, 2), np.uint8), check_contrast=False)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("left is a folder", "sub: is a folder, not an image file"),
        ("output is a folder", "sub: is a folder (give an image file name)"),
        ("grey + alpha", "l.png: 2 channels (grey + alpha) are not supported"),
        ("truncated png", "l.png: cannot be decoded as an image"),
        ("png checksum", "l.png: cannot be decoded as an image (libpng error: IHDR: CRC error)"),
        ("full disk", "out.png: no space left on device"),
    ],
)
def test_image_messages_say_what_is_wrong(tmp_path, checkpoint, capfd, monkeypatch, case, message):
    left, right = _png_pair(tmp_path)
    out = tmp_path / "out.png"
    (tmp_path / "sub").mkdir()
    if case == "left is a folder":
        left = tmp_path / "sub"
    if case == "output is a folder":
        out = tmp_path / "sub"
    if case == "grey + alpha":
        _grey_alpha_png(left)
    if case == "truncated png":
        left.write_bytes(left.read_bytes()[:60])
    if case == "png checksum":  # libpng prints its own error line unless it is caught
        data = bytearray(left.read_bytes())
        data[29] ^= 0xFF  # in the IHDR chunk's CRC
        left.write_bytes(bytes(data))
    if case == "full disk":
        monkeypatch.setattr(pathlib.Path, "write_bytes", _no_space)
    code, lines = run(capfd, "deblur", "-l", left, "-r", right, "-o", out, "--checkpoint", checkpoint)
    assert_one_line(code, lines, message)
    no_leftovers(tmp_path, "l.png", "r.png", "sub")


def test_an_error_in_a_data_loader_worker_is_one_line(tmp_path, checkpoint, capfd, monkeypatch):
    """DataLoader re-raises a worker's error with the worker's traceback as its message."""
    from torch._utils import ExceptionWrapper

    import dpanet.runtime.images as images

    try:
        raise images.ImageError("scene1.png: cannot be decoded as an image")
    except images.ImageError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    monkeypatch.setattr(images, "read_image", lambda path: wrapped.reraise())
    left, right = _png_pair(tmp_path)
    code, lines = run(
        capfd, "deblur", "-l", left, "-r", right, "-o", tmp_path / "o.png", "--checkpoint", checkpoint
    )
    assert (code, lines) == (1, ["dpanet deblur: error: scene1.png: cannot be decoded as an image"])


def test_export_prints_no_progress_before_an_error(tmp_path, capfd):
    bad = tmp_path / "c.pt"
    bad.write_text("text")
    code, lines = run(capfd, "export", "--checkpoint", bad, "-o", tmp_path / "m.onnx")
    assert_one_line(code, lines, "c.pt: not a PyTorch checkpoint")
    assert "export [" not in lines[0]


# --- consistency ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message, code",
    [
        (
            ["export", "--size", "64x60", "-o", "m.onnx"],
            "--size 64x60: height and width must be multiples of 8",
            1,
        ),
        (["export", "--size", "64 64", "-o", "m.onnx"], "argument --size: size must look like 256x256", 2),
        (["demo", "--size", "64x96"], "--size 64x96: this command renders square images", 1),
        (["demo", "--size", "60"], "--size 60x60: height and width must be multiples of 8", 1),
        (["bench", "model", "--size", "12x16"], "--size 12x16: height and width must be multiples of 8", 1),
        (["model-info", "--size", "64x0"], "argument --size: size must look like 256x256", 2),
    ],
)
def test_one_size_spelling(tmp_path, capfd, monkeypatch, argv, message, code):
    monkeypatch.chdir(tmp_path)
    assert_one_line(*run(capfd, *argv), message, code)
    no_leftovers(tmp_path)


@pytest.mark.parametrize(
    "extra, message, code",
    [
        (["--threads", "0"], "argument --threads: must be at least 1, got '0'", 2),
        (["--threads", "-3"], "argument --threads: must be at least 1, got '-3'", 2),
        (
            ["--model", "MODEL", "--device", "cuda"],
            "--device cuda: the onnxruntime backend runs on the CPU",
            1,
        ),
    ],
)
def test_backend_options_are_honoured_or_refused(tmp_path, capfd, extra, message, code):
    left, right = _png_pair(tmp_path)
    extra = [_onnx_model(tmp_path) if a == "MODEL" else a for a in extra]
    assert_one_line(
        *run(capfd, "deblur", "-l", left, "-r", right, "-o", tmp_path / "o.png", *extra), message, code
    )
    assert not (tmp_path / "o.png").exists()


def test_torch_backend_honours_threads(tmp_path, checkpoint, capfd):
    left, right = _png_pair(tmp_path)
    threads = torch.get_num_threads()
    try:
        argv = ["deblur", "-l", left, "-r", right, "-o", tmp_path / "o.png", "--checkpoint", checkpoint]
        assert run(capfd, *argv, "--threads", "1")[0] == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def _failing_dpdd(root: Path) -> Path:
    """A DPDD-layout split whose one scene has a truncated left view."""
    (name,) = make_dpdd(root, "test", count=1)
    left = root / "test_l" / "source" / name
    left.write_bytes(left.read_bytes()[:60])
    return root


def test_failed_evaluate_leaves_no_output_folder(tmp_path, checkpoint, capfd):
    data = _failing_dpdd(tmp_path / "dpdd")
    out = tmp_path / "new" / "eval"
    argv = ["evaluate", "--data", data, "--checkpoint", checkpoint, "--out", out, "--protocol", "16bit"]
    assert_one_line(*run(capfd, *argv), "scene0.png: cannot be decoded as an image")
    no_leftovers(tmp_path, "dpdd")


def test_interrupted_synth_leaves_no_scene_set(tmp_path, capfd, monkeypatch):
    from dpanet.training.data import SyntheticDPDataset

    real = SyntheticDPDataset.render

    def render(self, index):
        if index == 1:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(SyntheticDPDataset, "render", render)
    out = tmp_path / "set"
    code, lines = run(capfd, "synth", "--out", out, "--count", "3", "--size", "16")
    assert (code, lines) == (130, ["dpanet synth: interrupted"])
    no_leftovers(tmp_path)
    out.mkdir()  # an existing, already used --out keeps what it had
    (out / "notes.txt").write_text("mine")
    assert run(capfd, "synth", "--out", out, "--count", "3", "--size", "16")[0] == 130
    no_leftovers(out, "notes.txt")


@pytest.mark.parametrize("bad", ["view", "checkpoint"])
def test_failed_demo_leaves_no_output_folder(tmp_path, capfd, bad):
    out = tmp_path / "new" / "demo"
    if bad == "view":
        left, right = _png_pair(tmp_path)
        left.write_bytes(left.read_bytes()[:60])
        lines = run(capfd, "demo", "-l", left, "-r", right, "--out", out)
        assert_one_line(*lines, "l.png: cannot be decoded")
        no_leftovers(tmp_path, "l.png", "r.png")
    else:  # the synthetic pair is not written before the checkpoint is known to load
        (tmp_path / "c.pt").write_text("text")
        lines = run(capfd, "demo", "--size", "16", "--checkpoint", tmp_path / "c.pt", "--out", out)
        assert_one_line(*lines, "c.pt: not a PyTorch checkpoint")
        no_leftovers(tmp_path, "c.pt")


def test_image_writer_refuses_non_finite_pixels(tmp_path):
    from dpanet.errors import DPANetError
    from dpanet.runtime.images import write_image

    pixels = np.zeros((8, 8, 3), np.float32)
    pixels[3, 4, 1] = np.inf
    with pytest.raises(DPANetError, match="o.png: the image has NaN or Inf values"):
        write_image(tmp_path / "o.png", pixels, 8)
    no_leftovers(tmp_path)


def test_train_refuses_a_read_only_output_folder(tmp_path, capfd, monkeypatch, read_only):
    monkeypatch.chdir(tmp_path)
    read_only(tmp_path / "locked")
    toml = '[data]\nkind = "synthetic"\ncount = 4\nsize = 16\n[output]\ndir = "locked/run"\n'
    Path("c.toml").write_text(toml)
    assert_one_line(*run(capfd, "train", "--config", "c.toml"), "folder locked is not writable")


def test_train_resume_refuses_a_state_that_is_not_weights_only(tmp_path, capfd, monkeypatch):
    """Issue 23: torch's UnpicklingError, with its advice to load the file unsafely, came through."""
    monkeypatch.chdir(tmp_path)
    Path("run").mkdir()
    torch.save(
        {"format": "dpanet-training-state", "where": pathlib.PurePosixPath("x")}, "run/training-state.pt"
    )
    Path("c.toml").write_text('[data]\nkind = "synthetic"\ncount = 4\nsize = 16\n[output]\ndir = "run"\n')
    code, lines = run(capfd, "train", "--config", "c.toml", "--resume")
    assert_one_line(
        code, lines, "run/training-state.pt: holds Python objects besides tensors and plain values"
    )
    assert "weights_only" not in lines[0]
    no_leftovers(tmp_path / "run", "training-state.pt")
