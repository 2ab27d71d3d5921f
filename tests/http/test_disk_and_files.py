"""What the server keeps on disk: no more than it needs, never more than the disk can spare,
and readable by its user only."""

from __future__ import annotations

import stat

from conftest import get, png_bytes, rgba_pixels, submit
from live_server import start_server, wait_for


def test_health_shows_the_disk(live_server):
    disk = get(live_server, "/v1/health").json()["disk"]
    assert disk["free_bytes"] > 0 and disk["jobs_bytes"] >= 0
    assert disk["min_free_bytes"] == 2 * 2**30


def test_a_finished_job_keeps_only_its_result(live_server, style_png):
    job_id = submit(live_server, png_bytes(rgba_pixels()), style_png).json()["id"]
    assert wait_for(live_server, job_id)["state"] == "done"
    folder = live_server.data_dir / "jobs" / job_id
    assert [path.name for path in folder.iterdir()] == ["result"]


def test_no_job_is_taken_while_the_disk_is_nearly_full(tmp_path, style_png):
    with start_server(tmp_path, ["--min-free-disk", "1000000TB"]) as server:
        answer = submit(server, png_bytes(rgba_pixels()), style_png)
        assert answer.status_code == 507, answer.text
        error = answer.json()["error"]
        assert error["code"] == "disk_full" and "free" in error["message"]
        assert get(server, "/v1/health").json()["queue_length"] == 0


def test_the_servers_folders_and_files_are_its_users_only(live_server, style_png):
    job_id = submit(live_server, png_bytes(rgba_pixels()), style_png).json()["id"]
    assert wait_for(live_server, job_id)["state"] == "done"
    for root in (live_server.data_dir, live_server.config_dir):
        paths = [root, *root.rglob("*")]
        assert len(paths) >= 3
        for path in paths:
            expected = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == expected, path
