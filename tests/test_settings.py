"""Saved settings: anything unreadable or out of range falls back to its default, with a notice."""

from __future__ import annotations

import json

import pytest

from imgsim_desktop.core.settings import SETTINGS_NAME, Settings


@pytest.mark.parametrize("text", ["null", "[1, 2]", '"x"', "{not json", "\xff\xfe"])
def test_a_file_that_is_not_settings_gives_the_defaults_and_says_so(tmp_path, text):
    (tmp_path / SETTINGS_NAME).write_bytes(text.encode("latin-1"))
    settings = Settings.load(tmp_path)
    assert settings == Settings() and len(settings.notices) == 1 and SETTINGS_NAME in settings.notices[0]


def test_out_of_range_values_fall_back_one_by_one(tmp_path):
    saved = {"thumb_size": 0, "k": 40, "threads": -1, "device": "tpu", "dup_sensitivity": 7, "keep_rule": "resolution",
             "protected_folders": "/not/a/list", "preferred_folders": ["/photos/best"], "future_option": 1}  # fmt: skip
    (tmp_path / SETTINGS_NAME).write_text(json.dumps(saved))
    settings = Settings.load(tmp_path)
    assert (settings.thumb_size, settings.k, settings.threads, settings.device) == (160, 40, 0, "auto")
    assert settings.dup_sensitivity == 0.5 and settings.keep_rule == "resolution" and settings.preferred_folders == ["/photos/best"]
    assert settings.protected_folders == [] and len(settings.notices) == 5
    assert any("thumb_size = 0" in n for n in settings.notices)
    settings.save(tmp_path)
    assert "notices" not in json.loads((tmp_path / SETTINGS_NAME).read_text())


def test_a_file_the_app_cannot_use_is_kept_before_the_defaults_are_saved_over_it(tmp_path):
    hand_edited = '{"thumb_size": 200, "k": 30,}'  # one trailing comma
    (tmp_path / SETTINGS_NAME).write_text(hand_edited)
    settings = Settings.load(tmp_path)
    kept = tmp_path / (SETTINGS_NAME + ".unusable")
    assert f"kept as {kept}" in settings.notices[0]
    settings.save(tmp_path)  # the app saves when it closes
    assert kept.read_text() == hand_edited and json.loads((tmp_path / SETTINGS_NAME).read_text())["thumb_size"] == 160


@pytest.mark.parametrize("bad", [[240, 960], {"main": [240]}, {"main": [0, 0]}, {"main": [240, "960"]}, {"main": [-5, 900]}, {"main": [True, 900]}])
def test_splitter_positions_that_cannot_be_used_fall_back(tmp_path, bad):
    (tmp_path / SETTINGS_NAME).write_text(json.dumps({"splitters": bad, "k": 30}))
    settings = Settings.load(tmp_path)
    assert settings.splitters == {} and settings.k == 30 and "splitters" in settings.notices[0]


def test_splitter_positions_are_saved_and_read_back(tmp_path):
    settings = Settings()
    settings.splitters["main"] = [300, 900]
    settings.save(tmp_path)
    assert Settings.load(tmp_path).splitters == {"main": [300, 900]} and not Settings.load(tmp_path).notices
