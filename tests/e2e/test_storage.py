"""The S3 server as a browser and the operating system see it: CORS lets the app's own page PUT and GET
through presigned URLs and refuses any other origin, in demo mode (the demo's rule) and in cloud mode
(the README's on-premises rule on SeaweedFS); and a demo app killed with SIGKILL leaves no server
process and no demo folder behind."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support import cloud as cloud_support
from tests.support.app_server import RunningApp, run_app
from tests.support.demo_storage import demo_storage
from tests.support.services import free_port

KEY = "recordings/cors-check/2024/01/00000000-0000-4000-8000-000000000000/original.avi"
BODY = "RIFF from the browser"
ORPHAN_TIMEOUT_S = 20
"""The watcher notices at once; the server then gets 5 s to stop before it is killed."""

PUT_THEN_GET = """async ([putUrl, getUrl, body]) => {
    try {
        const put = await fetch(putUrl, {method: 'PUT', body, headers: {'Content-Type': 'video/x-msvideo'}});
        const etag = put.headers.get('ETag');
        const got = await fetch(getUrl);
        return {put: put.status, etag, get: got.status, text: await got.text()};
    } catch (error) {
        return {error: String(error)};
    }
}"""


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A blank page on another port: an origin no CORS rule names."""
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / "index.html").write_text("<!doctype html><title>elsewhere</title>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def try_from(page, origin_url: str, client, bucket: str) -> dict:
    put = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": KEY,
                                                              "ContentType": "video/x-msvideo"}, ExpiresIn=300)
    get = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=300)
    page.goto(origin_url)
    return page.evaluate(PUT_THEN_GET, [put, get, BODY])


def assert_cors(page, app_url: str, other: str, client, bucket: str) -> None:
    ours = try_from(page, app_url, client, bucket)
    assert ours == {"put": 200, "etag": ours["etag"], "get": 200, "text": BODY} and ours["etag"], ours
    client.delete_object(Bucket=bucket, Key=KEY)
    theirs = try_from(page, other, client, bucket)
    assert "Failed to fetch" in theirs.get("error", ""), theirs  # the preflight was refused
    assert "Contents" not in client.list_objects_v2(Bucket=bucket, Prefix=KEY)


def test_demo_storage_serves_the_app_origin_and_refuses_others(demo_app: RunningApp, page, other_origin) -> None:
    page.goto(demo_app.url)  # the first session starts the demo backends
    page.get_by_role("button", name="Sign in").first.wait_for()
    storage = demo_storage(demo_app)
    assert_cors(page, demo_app.url, other_origin, storage.client(), "pulsevault-demo")


def test_on_premises_cors_rule_serves_the_app_origin_and_refuses_others(cloud, cloud_app: RunningApp, page,
                                                                        other_origin) -> None:
    assert_cors(page, cloud_app.url, other_origin, cloud.s3_client(), cloud_support.BUCKET)


def storage_servers(app_pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(app_pid).children(recursive=True) if p.name() == "weed"]


def test_a_killed_demo_app_leaves_no_storage_server_and_no_demo_folder(browser, tmp_path) -> None:
    with run_app(tmp_path) as app:
        context = browser.new_context()
        context.new_page().goto(app.url)
        storage = demo_storage(app)
        context.close()
        deadline = time.monotonic() + ORPHAN_TIMEOUT_S
        while not (servers := storage_servers(app.pid)):  # the watcher starts it a moment after the log line
            assert time.monotonic() < deadline, "the demo's storage server never started"
            time.sleep(0.1)
        assert len(servers) == 1 and storage.workdir.exists()
        os.kill(app.pid, signal.SIGKILL)
        deadline = time.monotonic() + ORPHAN_TIMEOUT_S
        while (servers[0].is_running() and servers[0].status() != psutil.STATUS_ZOMBIE) or storage.workdir.exists():
            assert time.monotonic() < deadline, f"left behind: server {servers[0].pid}, folder {storage.workdir}"
            time.sleep(0.2)
