"""core/, storage/ and research/ must run without Qt: the CLI, benchmarks and headless tests depend on it."""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "imgsim_desktop"

BLOCK_QT = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'):
            raise ImportError('Qt is not allowed here: ' + name)
sys.meta_path.insert(0, BlockQt())
import importlib
for mod in MODULES:
    importlib.import_module(mod)
print('ok', len(MODULES))
"""


def test_core_storage_and_research_import_without_qt():
    modules = [
        "imgsim_desktop." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for layer in ("core", "storage", "research")
        for p in sorted((PACKAGE / layer).glob("*.py"))
    ]
    assert len(modules) >= 8
    out = subprocess.run([sys.executable, "-c", f"MODULES = {modules!r}\n{BLOCK_QT}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok {len(modules)}"


def test_the_blocker_really_blocks_qt():
    out = subprocess.run([sys.executable, "-c", f"MODULES = ['imgsim_desktop.ui.main_window']\n{BLOCK_QT}"], capture_output=True, text=True)
    assert out.returncode != 0 and "Qt is not allowed" in out.stderr
