"""Layer directions, declared in pyproject.toml ([tool.importlinter]) and checked here: ui -> workers
-> research -> core -> storage, no import cycles inside a package, and no Qt below workers. Also
checked the other way round: core/, storage/ and research/ really import with Qt absent."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PACKAGE = REPO / "imgsim_desktop"


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(tool), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True, timeout=300)


def test_declared_layer_contracts_hold():
    out = _lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 kept, 0 broken" in out.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """The contracts are not vacuous: storage importing core, as storage/thumbs.py once did, fails."""
    shutil.copytree(PACKAGE, tmp_path / "imgsim_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "imgsim_desktop" / "storage" / "thumbs.py", "a") as fh:
        fh.write("\nfrom imgsim_desktop.core.decode import open_image  # noqa\n")
    out = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config", str(tmp_path / "pyproject.toml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert out.returncode != 0 and "imgsim_desktop.storage.thumbs -> imgsim_desktop.core.decode" in out.stdout, out.stdout[-2000:]

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
