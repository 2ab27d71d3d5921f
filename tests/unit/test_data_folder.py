"""The data folder belongs to one server at a time, and to its user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nst_server import service
from nst_server.config import ServerConfig
from nst_server.datalock import DataFolderBusy, DataLock
from nst_server.security import load_or_create_token
from nst_server.service import Service
from nst_server.store import JobRecord, JobStore


def test_a_second_lock_on_the_folder_says_who_holds_it(tmp_path):
    first = DataLock.acquire(tmp_path)
    first.announce("http://127.0.0.1:8765")
    with pytest.raises(DataFolderBusy, match=r"already running on the data folder .*"
                       r"listening on http://127\.0\.0\.1:8765") as busy:
        DataLock.acquire(tmp_path)
    assert str(tmp_path) in str(busy.value)
    first.release()
    DataLock.acquire(tmp_path).release()  # free again once released


def test_a_second_server_gives_way_before_it_loads_any_model(tmp_path, monkeypatch):
    """Two editors starting a server at once: the second must not load VGG-19 for nothing."""

    def load_engines(config: ServerConfig) -> list:
        raise AssertionError("the models were loaded before the data folder was checked")

    monkeypatch.setattr(service, "load_engines", load_engines)
    first = DataLock.acquire(tmp_path)
    try:
        with pytest.raises(DataFolderBusy):
            Service(ServerConfig(data_dir=tmp_path, token="t"))
    finally:
        first.release()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_keeps_its_folders_and_files_private_and_tightens_loose_ones(tmp_path):
    data = tmp_path / "data"
    (data / "jobs").mkdir(parents=True, mode=0o755)
    (data / "jobs.sqlite3").touch(mode=0o644)
    os.chmod(data, 0o755)
    store = JobStore(data)
    store.write_file("0" * 32, "content", b"art")
    store.add(JobRecord(id="0" * 32, seq=1, state="queued", created=0.0, settings="{}",
                        styles=1, form="{}", has_mask=False, total=1))
    sqlite_files = list(data.glob("jobs.sqlite3*"))
    assert len(sqlite_files) == 3  # the database, its -wal and -shm
    for folder in (data, data / "jobs", store.folder("0" * 32)):
        assert mode(folder) == 0o700, folder
    for path in (*sqlite_files, store.folder("0" * 32) / "content"):
        assert mode(path) == 0o600, path
    store.close()


def test_a_token_file_readable_by_others_is_tightened(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    os.chmod(tmp_path / "token", 0o644)
    assert load_or_create_token(tmp_path) == "s3cret"
    assert mode(tmp_path / "token") == 0o600


def test_disk_use_is_counted_while_job_files_go(tmp_path, monkeypatch):
    store = JobStore(tmp_path)
    store.write_file("0" * 32, "result", b"12345")
    listed = [store.folder("0" * 32) / "content", store.folder("0" * 32) / "result"]
    # The content was listed, then deleted (its job ended) before it was measured.
    monkeypatch.setattr(type(store.jobs_dir), "glob", lambda self, pattern: iter(listed))
    assert store.disk_usage()["jobs_bytes"] == 5
    store.close()
