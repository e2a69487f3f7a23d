"""The core is headless: importing every core module never imports textual."""

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
