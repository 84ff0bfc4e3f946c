"""Commands in README.md and docs/*.md are checked as written (docs are code; docs/cli.md).

- Every ``dpanet`` command line, in code blocks (fenced or indented) and in inline code that starts
  with ``dpanet ``, goes through the real argument parser (``dpanet.cli.build_parser()``), whatever
  commands it holds. Lines are read as a shell would (continuations, comments, ``&&``/``;``/``|``,
  ``VAR=value`` prefixes, a ``$`` prompt); ``.venv/bin/dpanet``, ``python -m dpanet`` and
  ``torchrun ... -m dpanet`` count as ``dpanet``.
- Synopsis notation is expanded: ``[...]`` groups are included, ``a|b`` is tried with each
  alternative, and a placeholder value (the option's metavar, or ``N``, ``FILE``, ``HxW``,
  ``SIGMA,AMOUNT``) becomes a value the option's own type accepts. Options are spelled in full
  (abbreviations, which argparse would take, are refused). A line with an ellipsis (``...``) is
  partial: its command and options must exist, the rest cannot be checked. Inline code in prose
  names a command and the options it is about, so there, and only there, the arguments the command
  requires may be left out (every other error counts). ``dpanet CMD: error: ...`` is output, not a
  command; a command written as a placeholder (``dpanet COMMAND --help``) is generic.
- Every ``trtexec`` line that builds (``--onnx=``) gives min, opt and max shapes for both dynamic
  inputs, ``left`` and ``right`` (without them trtexec builds a 1 x 1 engine), equal for the two and
  ordered; one that runs a saved engine (``--loadEngine=``) gives ``--shapes`` for both (inline code
  naming a trtexec option, such as ``trtexec --dynamicPlugins``, is prose); and the lines
  docs/engines.md shows as what ``dpanet build-engine`` prints are exactly what ``trtexec_line``
  produces.
- Every ``libdpanet*.so`` the docs name is a library the build makes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpanet.cli import build_parser
from dpanet.runtime.model_info import INPUT_NAMES
from dpanet.runtime.tensorrt_engine import (
    DEFAULT_MAX,
    DEFAULT_MIN,
    DEFAULT_OPT,
    BuildRequest,
    ModelFacts,
    Profile,
    trtexec_line,
)

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SEPARATORS = {"&&", "||", ";", "|", "&"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(?:[,x][A-Z][A-Z0-9_]*)*")
# values tried, in order, for a placeholder given to an option with a type
SAMPLES = ("1", "256x256", "0.5", "0.5,0.5", "1,1")


@dataclass(frozen=True)
class Snippet:
    """A command line found in a document: where, the text (continuations joined), and whether it
    came from inline code (prose) rather than a code block."""

    path: Path
    line: int
    text: str
    inline: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}: {self.text}"


def _code_blocks(lines: list[str]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(code lines, prose lines) as (line number, text): fenced blocks and 4-space indented blocks
    (after a blank line) are code. Indented lines are prose too: inside a list they are text whose
    inline code counts, and an indented code block has no inline code."""
    code, prose = [], []
    fence = None
    indented = False
    previous_blank = True
    for number, text in enumerate(lines, 1):
        stripped = text.strip()
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            else:
                code.append((number, text))
            previous_blank = False
            continue
        if stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            continue
        if text.startswith("    ") and stripped and (previous_blank or indented):
            indented = True
            code.append((number, text[4:]))
            prose.append((number, text))
        else:
            indented = indented and not stripped
            prose.append((number, text))
        previous_blank = not stripped
    return code, prose


def _joined(code: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Code lines with backslash continuations joined, numbered by their first line."""
    joined, current, start = [], "", None
    for number, text in code:
        if start is None:
            start = number
        if text.rstrip().endswith("\\"):
            current += text.rstrip()[:-1] + " "
            continue
        joined.append((start, current + text))
        current, start = "", None
    if start is not None:
        joined.append((start, current))
    return joined


def snippets(path: Path) -> list[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    code, prose = _code_blocks(lines)
    found = [Snippet(path, number, text.strip(), False) for number, text in _joined(code) if text.strip()]
    # inline code may run across the line breaks of a paragraph
    paragraph: list[tuple[int, str]] = []
    for number, text in [*prose, (len(lines) + 1, "")]:
        if text.strip():
            paragraph.append((number, text))
            continue
        joined = "\n".join(t for _, t in paragraph)
        for match in re.finditer(r"(`+)(.+?)\1", joined, re.DOTALL):
            first = paragraph[0][0] + joined.count("\n", 0, match.start())
            body = " ".join(match.group(2).replace("\\|", "|").split())
            found.append(Snippet(path, first, body, True))
        paragraph = []
    return found


def _words(text: str) -> list[list[str]]:
    """The simple commands of a shell line, as words (comments dropped, redirections removed)."""
    # `|` is a pipe only as a word of its own: inside a word it separates synopsis alternatives
    lexer = shlex.shlex(text.rstrip().removesuffix("\\"), posix=True, punctuation_chars=";&<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    tokens = list(lexer)
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token in SEPARATORS:
            commands.append(current)
            current = []
        elif set(token) <= set("<>&") and token != "&":
            skip = True  # a redirection and its target; `2>&1` reads as 2, >&, 1
            if current and current[-1].isdigit():
                current.pop()
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def _dpanet_args(words: list[str]) -> list[str] | None:
    """The arguments given to dpanet by one simple command, or None if it does not run dpanet."""
    while words and (words[0] == "$" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
        words = words[1:]
    if not words:
        return None
    if Path(words[0]).name == "dpanet":
        return words[1:]
    for i in range(len(words) - 1):
        if words[i] == "-m" and words[i + 1] == "dpanet":
            return words[i + 2 :]
    return None


def _alternatives(words: list[str]) -> list[list[str]]:
    """``words`` with synopsis groups opened (``[x]`` -> ``x``), once per alternative of each ``a|b``
    (the others at their first)."""
    words = [w for w in (w.replace("[", "").replace("]", "") for w in words) if w]
    choices = [w.split("|") for w in words]
    variants = [[c[0] for c in choices]]
    for i, options in enumerate(choices):
        for option in options[1:]:
            variants.append([option if j == i else c[0] for j, c in enumerate(choices)])
    return variants


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _command_parser(parser, args: list[str]) -> tuple[argparse.ArgumentParser, list[str], list[str]]:
    """The deepest (sub)command parser ``args`` reach, the command words and the remaining words."""
    words = []
    while args and args[0] in _subparsers(parser):
        words.append(args[0])
        parser = _subparsers(parser)[args[0]]
        args = args[1:]
    return parser, words, args


def _is_placeholder(action: argparse.Action, token: str) -> bool:
    return token == action.metavar or PLACEHOLDER.fullmatch(token) is not None


def _sample(action: argparse.Action, token: str) -> str:
    """A value ``action`` accepts in place of the placeholder ``token``."""
    if action.choices:
        return str(next(iter(action.choices)))
    if action.type is None:
        return token
    for sample in SAMPLES:
        try:
            action.type(sample)
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            continue
        return sample
    return token


def _filled(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """``args`` with placeholder values of options replaced by samples of the option's type."""
    command_parser, words, rest = _command_parser(parser, args)
    options = command_parser._option_string_actions
    filled, action = [], None
    for token in rest:
        name = token.split("=", 1)[0]
        if name in options:
            action = options[name]
            if "=" in token and _is_placeholder(action, token.split("=", 1)[1]):
                token = f"{name}={_sample(action, token.split('=', 1)[1])}"
            filled.append(token)
            continue
        if action is not None and action.nargs != 0 and _is_placeholder(action, token):
            token = _sample(action, token)
        filled.append(token)
    return [*words, *filled]


def _parse_error(parser: argparse.ArgumentParser, args: list[str], inline: bool) -> str | None:
    """The parser's error for ``args`` (None if it takes them; --help counts as taken). ``inline``:
    prose, where the command's required arguments may be left out."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            parser.parse_args(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            message = err.getvalue().strip() or f"exit {exc.code}"
            required = "the following arguments are required" in message or " is required" in message
            return None if inline and required else message
    return None


def _partial_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """For a line with an ellipsis: its commands and options must exist."""
    command_parser, words, rest = _command_parser(parser, [a for a in args if a != "..."])
    if not words:
        return f"no dpanet command in {args}"
    if _subparsers(command_parser):
        return f"{' '.join(words)}: a subcommand is missing"
    unknown = [
        t for t in rest if t.startswith("-") and t.split("=")[0] not in command_parser._option_string_actions
    ]
    return f"unknown options {unknown}" if unknown else None


def check_dpanet_line(parser: argparse.ArgumentParser, snippet: Snippet, args: list[str]) -> str | None:
    """Why ``args`` (what follows ``dpanet`` in ``snippet``) is not a valid command line, or None."""
    if not args or args[0].endswith(":"):
        return None  # `dpanet` alone, or its error output (`dpanet CMD: error: ...`)
    if PLACEHOLDER.fullmatch(args[0]) and args[0] not in _subparsers(parser):
        return None  # a generic line: `dpanet COMMAND --help`
    for words in _alternatives(args):
        if "..." in words or any(w.endswith("...") for w in words):
            problem = _partial_error(parser, [w.removesuffix("...") or "..." for w in words])
        else:
            problem = _parse_error(parser, _filled(parser, words), snippet.inline)
        if problem is not None:
            return f"{' '.join(words)}: {problem}"
    return None


def dpanet_lines() -> list[tuple[Snippet, list[str]]]:
    found = []
    for path in DOCS:
        for snippet in snippets(path):
            if snippet.inline and not snippet.text.startswith("dpanet "):
                continue
            try:
                commands = _words(snippet.text)
            except ValueError:  # unbalanced quotes: prose, not a command
                continue
            for words in commands:
                args = _dpanet_args(words)
                if args is not None:
                    found.append((snippet, args))
    return found


def _strict_parser() -> argparse.ArgumentParser:
    """``build_parser()`` with abbreviated options refused, in every (sub)command."""
    parser = build_parser()
    pending = [parser]
    while pending:
        current = pending.pop()
        current.allow_abbrev = False
        pending.extend(_subparsers(current).values())
    return parser


def test_every_dpanet_command_in_the_docs_is_one_the_parser_takes():
    parser = _strict_parser()
    lines = dpanet_lines()
    assert len(lines) >= 60, "too few dpanet lines found: did the docs or the reader change?"
    problems = [
        f"{snippet}\n    -> {why}"
        for snippet, args in lines
        if (why := check_dpanet_line(parser, snippet, args))
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("dpanet deblur --left L.png --right R.png -o out.png --tiel 512x512", "unrecognized arguments"),
        ("dpanet export --checkpoint c.pt -o m.onnx --flavor plugin|portible", "invalid choice"),
        ("dpanet frobnicate --x 1", "invalid choice"),
        ("dpanet build-engine --onnx m.onnx -o m.plan [--min 256x256 --opt 12x] \\", "--opt"),
        ("dpanet parity --checkpoint c.pt --modle a.onnx ...", "unknown options ['--modle']"),
        ("torchrun --nproc_per_node 4 -m dpanet train --config c.toml --resum", "unrecognized arguments"),
        (".venv/bin/pip install -e . && .venv/bin/dpanet demo --sise 12", "unrecognized arguments"),
        (".venv/bin/dpanet deblur --size 12", "the following arguments are required"),
        ("dpanet bench --repeats 2", "invalid choice"),
        ("$ dpanet export --checkpoint c.pt -o m.onnx --precison fp16", "unrecognized arguments"),
    ],
)
def test_a_wrong_command_line_is_caught(text, problem):
    """The checker itself: each of these is wrong in one way and must be reported."""
    parser = _strict_parser()
    snippet = Snippet(REPO / "README.md", 1, text, False)
    problems = [
        why
        for words in _words(text)
        if (args := _dpanet_args(words)) is not None and (why := check_dpanet_line(parser, snippet, args))
    ]
    assert any(problem in p for p in problems), problems


def test_placeholders_and_notation_are_read_as_synopses():
    parser = _strict_parser()
    for text in (
        "dpanet build-engine --onnx M.onnx -o M.plan [--min HxW] [--batch N] [--workspace GiB]",
        "dpanet export --checkpoint ours.pt -o model.onnx [--flavor plugin|portable]  # a comment",
        "DPANET_SHARED=../shared dpanet build-engine --onnx m.onnx -o m.plan 2>&1 | tee log",
    ):
        snippet = Snippet(REPO / "README.md", 1, text, False)
        for words in _words(text):
            if (args := _dpanet_args(words)) is not None:
                assert check_dpanet_line(parser, snippet, args) is None, text


def trtexec_lines() -> list[Snippet]:
    found = []
    for path in DOCS:
        for snippet in snippets(path):
            if snippet.text.startswith("trtexec "):
                found.extend(
                    Snippet(path, snippet.line, " ".join(words), snippet.inline)
                    for words in _words(snippet.text)
                    if words[0] == "trtexec"
                )
    return found


def _shapes(value: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for entry in value.split(","):
        name, _, dims = entry.rpartition(":")
        shapes[name] = tuple(int(d) for d in dims.split("x"))
    return shapes


def trtexec_problem(text: str) -> str | None:
    """Why a documented trtexec line would not build or run our dynamic engine as meant, or None."""
    options = dict(word.split("=", 1) if "=" in word else (word, "") for word in shlex.split(text)[1:])
    if "--onnx" in options:
        needed = ("--minShapes", "--optShapes", "--maxShapes")
    elif "--loadEngine" in options:
        needed = ("--shapes",)
    else:
        return "neither --onnx nor --loadEngine"
    profile = []
    for option in needed:
        if option not in options:
            return f"no {option}: trtexec would fix the dynamic inputs at 1x1"
        try:
            shapes = _shapes(options[option])
        except ValueError:
            return f"{option}={options[option]}: not name:NxCxHxW,..."
        if sorted(shapes) != sorted(INPUT_NAMES):
            return f"{option} names {sorted(shapes)}, not both inputs {list(INPUT_NAMES)}"
        if len(set(shapes.values())) != 1 or any(len(s) != 4 for s in shapes.values()):
            return f"{option}: left and right must have one N x C x H x W shape"
        profile.append(shapes[INPUT_NAMES[0]])
    if any(
        not all(a <= b for a, b in zip(lo, hi, strict=True))
        for lo, hi in zip(profile, profile[1:], strict=False)
    ):
        return f"shapes not ordered min <= opt <= max: {profile}"
    return None


def test_every_trtexec_line_in_the_docs_gives_shapes_for_both_inputs():
    lines = trtexec_lines()
    assert len(lines) >= 4, "too few trtexec lines found: did the docs or the reader change?"
    commands = [
        line for line in lines if not line.inline or "--onnx=" in line.text or "--loadEngine=" in line.text
    ]
    problems = [f"{line}\n    -> {why}" for line in commands if (why := trtexec_problem(line.text))]
    assert problems == [], "\n".join(problems)


def test_the_checker_refuses_a_line_without_shapes():
    assert "no --minShapes" in trtexec_problem(
        "trtexec --onnx=m.onnx --dynamicPlugins=lib.so --saveEngine=m.plan"
    )
    assert "no --shapes" in trtexec_problem("trtexec --loadEngine=m.plan")
    one = "--minShapes=left:1x3x8x8 --optShapes=left:1x3x8x8 --maxShapes=left:1x3x8x8"
    assert "not both inputs" in trtexec_problem(f"trtexec --onnx=m.onnx {one}")
    both = ",".join(f"{n}:1x3x{{}}" for n in INPUT_NAMES)
    shapes = f"--minShapes={both.format('64x64', '64x64')} --optShapes={both.format('32x32', '32x32')}"
    assert "not ordered" in trtexec_problem(
        f"trtexec --onnx=m.onnx {shapes} --maxShapes={both.format('64x64', '64x64')}"
    )


@pytest.mark.parametrize("major", [10, 11])
def test_the_trtexec_lines_engines_md_shows_are_what_build_engine_prints(major):
    """docs/engines.md's example: the default profile, an fp16 plugin model, the installed library."""
    request = BuildRequest(onnx=Path("model.onnx"), output=Path("model.plan"))
    facts = ModelFacts(b"", "", {}, "fp16", "plugin", Profile(1, DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX), 3)
    line = trtexec_line(request, facts, Path(f"libdpanet_trt{major}_plugins.so"), major)
    assert trtexec_problem(line) is None
    assert line in [s.text for s in trtexec_lines() if s.path.name == "engines.md"]


def test_every_library_the_docs_name_is_one_the_build_makes():
    """``libdpanet_*.so`` in README.md and docs/ are the libraries dpanet.plugins loads (the pattern
    ``libdpanet_trt<major>_plugins.so`` stands for the two plugin libraries)."""
    from dpanet.plugins._library import LIBRARIES

    known = set(LIBRARIES.values()) | {"libdpanet_trt<major>_plugins.so"}
    named = {
        (path.relative_to(REPO), name)
        for path in DOCS
        for name in re.findall(r"libdpanet\w*(?:<\w+>\w*)?\.so", path.read_text(encoding="utf-8"))
    }
    assert len(named) >= 5
    assert sorted((str(p), n) for p, n in named if n not in known) == []
