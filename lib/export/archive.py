"""The zip of an export, streamed: each recording is read from the bucket a chunk at a time while the zip
is written (a few ranged GETs at once on a presigned link, :func:`lib.transfer.read_signed`), so the server
holds a few ranges per download in memory and writes nothing to its disk.

zipstream-ng writes the zip (stored, not compressed: video does not compress, and the CRC is all the
work); it switches to ZIP64 for members and archives over 4 GiB. Sizes are known in advance, so the
response carries a Content-Length and the browser shows real progress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from queue import Empty, Full, Queue

from zipstream import ZIP_STORED, ZipStream

from lib.export.model import ExportPlan, ObjectFile
from lib.settings import MIB
from lib.storage import ObjectStore
from lib.transfer import read_signed, sign_pinned

RANGE_BYTES = 8 * MIB
"""Bytes per ranged GET: at 4 MiB the requests' own overhead cost a third more CPU per byte."""
RANGE_CONCURRENCY = 4
"""Ranged GETs in flight per streamed recording: more than one connection's speed."""
READ_AHEAD_CHUNKS = 4
"""Ranges read ahead of the one being sent, so reading S3 overlaps sending; with the GETs in flight, at most
about 72 MiB per download in memory."""
_POLL_S = 0.5
"""How often a reader waiting on a full queue checks whether the download was cancelled."""
_END = object()


def zip_name(plan: ExportPlan) -> str:
    return f"{plan.root}.zip"


def export_zip(store: ObjectStore, plan: ExportPlan) -> ZipStream:
    """The plan as a sized zip stream (``len()`` is its byte count); nothing is read until it is iterated.

    The made files (README first) come before the recordings; each recording is read with the ETag the
    plan saw, so one replaced since fails the download instead of ending up in it.
    """
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for made in plan.made:
        archive.add(made.data, f"{plan.root}/{made.path}")
    for obj in plan.objects:
        archive.add(_object_bytes(store, plan, obj), f"{plan.root}/{obj.path}", size=obj.size)
    return archive


def _object_bytes(store: ObjectStore, plan: ExportPlan, obj: ObjectFile) -> Iterator[bytes]:
    """One recording's bytes, its link signed only when the zip reaches it (a long export outlasts a link)."""
    link = sign_pinned(store, obj.key, owner=plan.space, size=obj.size, etag=obj.etag)
    yield from read_signed(link, range_size=RANGE_BYTES, concurrency=RANGE_CONCURRENCY)


def read_ahead(chunks: Iterable[bytes], depth: int = READ_AHEAD_CHUNKS) -> Iterator[bytes]:
    """``chunks`` in order, read by a thread of their own up to ``depth`` ahead of the consumer.

    Without it the route reads a chunk from S3, then sends it, then reads the next: each waits for the
    other. An error while reading reaches the consumer; a consumer that stops early (a cancelled download)
    stops the reader, which closes ``chunks`` (and so its S3 response) within :data:`_POLL_S`.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()
    reader = threading.Thread(target=_read_into, args=(iter(chunks), queue, stop), name="export-read-ahead",
                              daemon=True)
    reader.start()
    try:
        while (item := _take(queue, reader)) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


def _take(queue: Queue[object], reader: threading.Thread) -> object:
    while True:
        try:
            return queue.get(timeout=_POLL_S)
        except Empty:
            if not reader.is_alive() and queue.empty():
                return RuntimeError("The export's reader stopped without finishing.")


def _read_into(chunks: Iterator[bytes], queue: Queue[object], stop: threading.Event) -> None:
    try:
        for chunk in chunks:
            if not _put(queue, chunk, stop):
                return
        _put(queue, _END, stop)
    except BaseException as exc:  # handed to the consumer, which raises it
        _put(queue, exc, stop)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _put(queue: Queue[object], item: object, stop: threading.Event) -> bool:
    """Queue ``item`` unless the consumer has gone; False once it has."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=_POLL_S)
            return True
        except Full:
            continue
    return False
