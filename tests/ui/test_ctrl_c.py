"""Ctrl+C in the terminal that started the app closes it as its close button would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from imgsim_desktop.paths import Layout


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_closes_the_window_cleanly(tmp_path, signum):
    data = tmp_path / "data"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMGSIM_DATA_DIR=str(data))
    # Started as a terminal starts it: SIGINT at its default (a background test run may ignore it).
    app = subprocess.Popen([sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                            "from imgsim_desktop.__main__ import main; raise SystemExit(main())"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not Layout(data).catalog.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # the window is up and its workers started
    app.send_signal(signum)
    _, err = app.communicate(timeout=60)
    assert app.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "QThread: Destroyed" not in err
    assert (data / "settings.json").exists()  # closeEvent ran: the settings were saved on the way out
