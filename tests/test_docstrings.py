"""The examples in melodia's docstrings run: ``>>>`` examples as doctests, and every code block
(``::``) has imports that resolve and ``melodia.X`` names that exist, so none can go stale."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
import textwrap

import pytest

import melodia

MODULES = ["melodia"] + sorted(m.name for m in pkgutil.walk_packages(melodia.__path__, "melodia.")
                              if not m.name.endswith("__main__"))


def _docstrings(module) -> list[str]:
    tree = ast.parse(importlib.util.find_spec(module.__name__).loader.get_source(module.__name__))
    return [doc for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and (doc := ast.get_docstring(node))]


def code_blocks(doc: str) -> list[str]:
    """The indented blocks after a line ending in ``::`` that parse as Python."""
    blocks = []
    for match in re.finditer(r"::\n\n((?:[ \t]+.*\n|\n)+)", doc + "\n"):
        block = textwrap.dedent(match.group(1))
        try:
            ast.parse(block)
        except SyntaxError:  # a table or a file layout, not code
            continue
        blocks.append(block)
    return blocks


def test_every_module_is_found():
    assert len(MODULES) > 60 and "melodia.generation.generator" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=dict(vars(module))):
        runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("name", MODULES)
def test_code_blocks_name_what_exists(name):
    module = importlib.import_module(name)
    for block in (b for doc in _docstrings(module) for b in code_blocks(doc)):
        check_block(block)


def check_block(block: str) -> None:
    """Run the block's melodia imports; every ``melodia.a.b`` it names must exist."""
    scope: dict = {}
    for node in ast.walk(ast.parse(block)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            if getattr(node, "module", None) or any(n.startswith("melodia") for n in names):
                if (getattr(node, "module", None) or names[0]).startswith("melodia"):
                    exec(compile(ast.Module([node], []), "<docstring>", "exec"), scope)
        elif isinstance(node, ast.Attribute):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id == "melodia":
                value = melodia
                for attr in reversed(chain):
                    value = getattr(value, attr, None) or importlib.import_module(
                        f"{value.__name__}.{attr}")


def test_a_stale_block_is_caught():
    with pytest.raises(ImportError):
        check_block("from melodia.live import StreamConfig\n")
    with pytest.raises(ModuleNotFoundError):
        check_block("melodia.no_such_thing(1)\n")
    assert [b.strip() for b in code_blocks("Example::\n\n    x = 1\n\nText.")] == ["x = 1"]


def test_the_doctests_are_many_and_a_wrong_one_fails():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = [t for name in MODULES for t in finder.find(importlib.import_module(name))]
    assert sum(len(t.examples) for t in found) >= 15
    wrong = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "wrong", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(wrong, out=lambda _: None)
    assert runner.failures == 1
