"""Layering: the core is headless (importing every core module never imports textual), and
the tests share helpers through tests/helpers, never by importing one another."""

from __future__ import annotations

import subprocess
import sys


def test_core_never_imports_textual():
    code = (
        "import pkgutil, importlib, sys, tui.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('tui.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'textual' or n.startswith('textual.'))\n"
        "assert not bad, bad\n"
        "print(len([n for n in sys.modules if n.startswith('tui.core.')]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 8  # the modules really were imported


def test_no_test_module_imports_another_test_module_or_a_conftest():
    """What tests share lives in tests/helpers (or a package's own non-test module, such as
    tests/ui/scenarios.py); conftest files hold fixtures and hooks only."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if name.startswith("tests.") and (last == "conftest" or last.startswith("test_")):
                    bad.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    assert not bad, bad
