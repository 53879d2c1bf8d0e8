"""'Inside this folder?' as the file system means it: symlinks, '..', letter case where ignored."""

from __future__ import annotations

from imgsim_desktop.core import folders


def test_really_inside_resolves_links_and_dotdot(tmp_path):
    real = tmp_path / "real" / "lib"
    (real / "copies").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert folders.really_inside(str(tmp_path / "link" / "lib" / "copies" / "a.jpg"), str(real / "copies"))
    assert folders.really_inside(str(real / "copies" / "a.jpg"), str(tmp_path / "link" / "lib" / ".." / "lib"))
    assert not folders.really_inside(str(real / "copies-2" / "a.jpg"), str(real / "copies"))  # a name prefix is not a folder
    assert not folders.lexically_inside(str(tmp_path / "link" / "lib" / "a.jpg"), str(real))  # the catalog's view: strings


def test_case_is_ignored_only_where_the_file_system_ignores_it(tmp_path, monkeypatch):
    (tmp_path / "Photos").mkdir()
    path, folder = str(tmp_path / "photos" / "a.jpg"), str(tmp_path / "Photos")
    folders._ignores_case.cache_clear()
    assert folders.really_inside(path, folder) == folders._ignores_case(folders.real(folder))
    monkeypatch.setattr(folders, "_ignores_case", lambda _f: True)  # as on macOS or Windows
    assert folders.really_inside(path, folder)
