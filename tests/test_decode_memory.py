"""Decoding is bounded in memory: a 16-bit PNG bomb decodes small, a decode too big for memory is
refused with its numbers, decodes at once share one budget, and a JPEG header that claims far more
pixels than its data holds is refused."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from conftest import PHOTOS
from imgsim_desktop.core import decode
from imgsim_desktop.core.decode import DecodeError, open_image

MAKE_BOMB = """
import sys, numpy as np
from PIL import Image
side = int(sys.argv[2])
ramp = (np.arange(side, dtype=np.uint32) * 65535 // side).astype(np.uint16)
Image.fromarray(np.broadcast_to(ramp, (side, side)).copy()).save(sys.argv[1], compress_level=1)
"""
DECODE = """
import resource, sys, time
from imgsim_desktop.core.decode import open_image
started = time.perf_counter()
img, size = open_image(sys.argv[1], min_side=320)
print(img.size[0], img.size[1], size[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, round(time.perf_counter() - started, 1))
"""
PEAK_LIMIT_MB = 1100  # the 512 MB of 16-bit pixels Pillow must hold, plus the interpreter; not 6.4 GB


@pytest.mark.slow
def test_a_16_bit_png_bomb_decodes_within_a_stated_memory_bound(tmp_path):
    bomb = tmp_path / "bomb.png"
    subprocess.run([sys.executable, "-c", MAKE_BOMB, str(bomb), "16000"], check=True, timeout=300)
    with Image.open(bomb) as img:
        assert img.mode == "I;16" and img.size == (16000, 16000)
    out = subprocess.run([sys.executable, "-c", DECODE, str(bomb)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    width, height, claimed, peak_mb, seconds = out.stdout.split()
    assert int(claimed) == 16000 and min(int(width), int(height)) >= 320
    assert int(peak_mb) < PEAK_LIMIT_MB, f"peak RSS {peak_mb} MB decoding the bomb"


def test_a_decode_bigger_than_the_limit_is_refused_with_its_numbers(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("I;16", (2000, 1000)).save(path)
    monkeypatch.setattr(decode, "MAX_DECODE_BYTES", 5_000_000)
    with pytest.raises(DecodeError, match=r"too large to decode safely \(2000x1000 I;16 pixels need"):
        open_image(path, min_side=320)


def test_a_jpeg_claiming_far_more_pixels_than_its_data_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.open(PHOTOS / "labelled" / "dog.jpg").convert("RGB").resize((512, 512)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 16000, 16000)
    (tmp_path / "liar.jpg").write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="header claims 16000x16000"):
        open_image(tmp_path / "liar.jpg", min_side=320)
    flat = tmp_path / "flat.jpg"
    Image.new("L", (3000, 3000)).save(flat, quality=5)  # the sparsest real JPEG there is: accepted
    assert open_image(flat, min_side=320)[1] == (3000, 3000)


def test_decodes_at_once_share_one_budget():
    budget = decode._Budget(100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def work():
        with budget.hold(60):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most[0] == 1 and budget.used == 0  # 60 + 60 > 100: one at a time
    with budget.hold(500):  # alone, even an oversized one gets in: nothing waits forever
        assert budget.used == 500
