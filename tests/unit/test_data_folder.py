"""The data folder belongs to one server at a time, and to its user only."""

from __future__ import annotations

import pytest

from server.datalock import DataFolderBusy, DataLock


def test_a_second_lock_on_the_folder_says_who_holds_it(tmp_path):
    first = DataLock.acquire(tmp_path)
    first.announce("http://127.0.0.1:8765")
    with pytest.raises(DataFolderBusy, match=r"already running on the data folder .*"
                       r"listening on http://127\.0\.0\.1:8765") as busy:
        DataLock.acquire(tmp_path)
    assert str(tmp_path) in str(busy.value)
    first.release()
    DataLock.acquire(tmp_path).release()  # free again once released
