"""The zip of an export, streamed: each recording is read from the bucket a chunk at a time while the zip
is written, so the server holds about a chunk per download in memory and writes nothing to its disk.

zipstream-ng writes the zip (stored, not compressed: video does not compress, and the CRC is all the
work); it switches to ZIP64 for members and archives over 4 GiB. Sizes are known in advance, so the
response carries a Content-Length and the browser shows real progress.
"""

from __future__ import annotations

from zipstream import ZIP_STORED, ZipStream

from lib.export.model import ExportPlan
from lib.storage import DOWNLOAD_CHUNK, ObjectStore

ZIP_CHUNK = DOWNLOAD_CHUNK
"""Bytes read from S3 per step: large enough for full speed, small enough that many downloads fit in memory."""


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
        chunks = store.iter_object(obj.key, owner=plan.owner, etag=obj.etag, chunk_size=ZIP_CHUNK)
        archive.add(chunks, f"{plan.root}/{obj.path}", size=obj.size)
    return archive
