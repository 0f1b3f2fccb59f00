import os

import fsspec
import pytest

from tubelets.io.files import file_size, is_local, join_url, local_path, read_head, with_protocol


@pytest.mark.parametrize(
    "base, parts, expected",
    [
        ("gs://bucket/data/", ("JPEGImages", "v/00000.jpg"), "gs://bucket/data/JPEGImages/v/00000.jpg"),
        ("/data", ("instances.json",), "/data/instances.json"),
        ("gs://bucket/data", ("s3://other/ann.json",), "s3://other/ann.json"),
        ("memory://root", ("/abs/ann.json",), "/abs/ann.json"),
    ],
)
def test_join_url(base, parts, expected):
    assert join_url(base, *parts) == expected


def test_with_protocol_and_is_local():
    assert with_protocol("gs://bucket/*.mp4", "bucket/a.mp4") == "gs://bucket/a.mp4"
    assert with_protocol("/data/*.mp4", "/data/a.mp4") == "/data/a.mp4"
    assert is_local("/data/a.mp4") and is_local("file:///data/a.mp4")
    assert not is_local("memory://a.mp4")


def test_file_size_and_head(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"0123456789")
    assert file_size(str(tmp_path / "f.bin")) == 10
    assert file_size(str(tmp_path / "missing.bin")) is None
    assert file_size(str(tmp_path)) is None  # a folder is no file
    assert read_head(str(tmp_path / "f.bin"), 4) == b"0123"


def test_local_path_uses_local_files_in_place(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"abc")
    with local_path(str(tmp_path / "f.bin")) as path:
        assert path == str(tmp_path / "f.bin")
    assert (tmp_path / "f.bin").exists()


def test_local_path_copies_remote_files_and_removes_the_copy():
    fsspec.filesystem("memory").pipe("/files-test/clip.mp4", b"video bytes")
    with local_path("memory://files-test/clip.mp4") as path:
        assert path.endswith(".mp4")
        with open(path, "rb") as f:
            assert f.read() == b"video bytes"
    assert not os.path.exists(path)
