"""`imgsim-desktop`: the GUI entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imgsim-desktop", description="Find visually similar photos.")
    parser.add_argument("--data-dir", help="library data folder (default: $IMGSIM_DATA_DIR or the user data dir)")
    parser.add_argument("--model", help="backbone name (see `imgsim models`)")
    parser.add_argument("--self-test", action="store_true", help="check this installation on bundled sample photos (no display needed) and exit")
    # Quits right after the window is first shown and prints the time since process start.
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    args, qt_args = parser.parse_known_args(argv)
    if args.self_test:
        from imgsim_desktop import selftest

        return selftest.main()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from PySide6.QtCore import QCoreApplication

    from imgsim_desktop import xcb_check

    if QCoreApplication.instance() is None and xcb_check.uses_xcb(os.environ, qt_args):
        # Qt would abort in QApplication() blaming libxcb-cursor0, whatever is missing: name it first.
        missing = xcb_check.missing_libraries(_xcb_plugin())
        if missing:
            print(xcb_check.hint(missing), file=sys.stderr)
            return 1

    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from imgsim_desktop import paths
    from imgsim_desktop.core.backbones import ModelError
    from imgsim_desktop.core.engine import CATALOG_NAME
    from imgsim_desktop.storage.catalog import Catalog, CatalogError
    from imgsim_desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("imgsim-desktop")
    app.setDesktopFileName("imgsim-desktop")
    app.setWindowIcon(QIcon(str(paths.resources_dir() / "imgsim.svg")))
    try:
        with Catalog(paths.data_dir(args.data_dir) / CATALOG_NAME):  # an empty or damaged catalog is refused here, not shown as an empty library
            pass
        window = MainWindow(data_dir=args.data_dir, model=args.model)
    except (ModelError, CatalogError, OSError) as exc:  # missing or damaged models or catalog, an unwritable data folder
        print(f"imgsim cannot start: {exc}", file=sys.stderr)
        if not args.startup_probe:  # a probe runs unattended: a modal box would wait forever
            QMessageBox.critical(None, "imgsim cannot start", f"{exc}\n\nRun `imgsim-desktop --self-test` in a terminal for details.")
        return 1
    window.show()
    _close_on_ctrl_c(app, window)
    if args.startup_probe:
        from imgsim_desktop.selftest import quit_after_first_show

        quit_after_first_show(app, window)
    code = app.exec()
    from imgsim_desktop.workers.lifecycle import unfinished_workers

    if unfinished_workers():
        # A worker missed its stop deadline (see workers.lifecycle). Tearing Python down around
        # its running thread would abort; its committed work is already safe on disk.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code


def _close_on_ctrl_c(app, window) -> None:
    """Ctrl+C in the terminal (or SIGTERM from a session manager) closes the window as its close
    button would: indexing stops after its batch, workers end, the settings are saved. Without
    this, Python raised KeyboardInterrupt inside whichever slot ran next and the process died
    with worker threads still running."""
    import signal

    from PySide6.QtCore import QTimer

    def close(_signum, _frame) -> None:
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, close)
    signal.signal(signal.SIGTERM, close)
    # Python runs signal handlers only between bytecodes; Qt's event loop is C++. A short timer
    # hands control to Python a few times a second so the handler runs promptly.
    app._signal_tick = QTimer(interval=200, timeout=lambda: None)
    app._signal_tick.start()


def _xcb_plugin() -> Path:
    from PySide6.QtCore import QLibraryInfo

    return Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"


if __name__ == "__main__":
    sys.exit(main())
