"""Clean-up after a failed or abandoned upload: nothing half-stored stays without a row that says so.

* :func:`clean_up_failure` deletes the objects an attempt sent and marks its row
  ``failed`` with the reason (or leaves it ``pending`` when it still points at a
  good original already in the bucket). A failed row no longer holds quota.
* :func:`remove_unfinished` removes a record that never became ready (a failed
  attempt that Retry replaces, a discarded browser upload): its unfinished
  multipart uploads, every object under its folder, then the row. A ``ready``
  record is never touched.

Both act for the signed-in user of ``backends`` only: objects are deleted as
that user (``backends.space``: their personal space or the study they upload into)
and rows are written by the server's records for that user, so a record of
anyone else's changes nothing.

When the storage itself is unreachable, deleting can fail too; the objects then
stay under the record's folder with a ``failed`` (or ``pending``) row pointing
at them, which the Usage page's reconciliation finds.
"""

from __future__ import annotations

import logging

from lib.errors import NotFound, PulseVaultError
from lib.keys import record_folder
from lib.pipeline.backends import Backends
from lib.records import FileRecord, Status

log = logging.getLogger(__name__)

INTERRUPTED = "The upload was interrupted before it finished."
"""The reason recorded when an upload stopped for something other than a PulseVault error (e.g. a rerun)."""


def clean_up_failure(record: FileRecord, keys: list[str], exc: BaseException, backends: Backends, *,
                     keep_pending: bool = False) -> None:
    """Best effort: delete these objects of the attempt's own row, then mark the row failed with the reason.

    ``keep_pending``: the row still points at a good original (:mod:`lib.pipeline.finish`), so it stays pending.
    """
    try:
        result = backends.store.delete(keys, owner=backends.space) if keys else None
        for _key, message in result.errors if result else ():
            log.warning("upload cleanup: could not delete an object of record %s: %s", record.id, message)
    except PulseVaultError as cleanup_error:
        log.warning("upload cleanup: objects of record %s not deleted: %s", record.id, cleanup_error)
    if keep_pending:
        return
    reason = str(exc) if isinstance(exc, PulseVaultError) else INTERRUPTED
    try:
        backends.server.mark_failed(record.id, reason)
    except PulseVaultError as cleanup_error:
        # The row stays pending; reconciliation finds it once it is stale.
        log.warning("upload cleanup: record %s not marked failed: %s", record.id, cleanup_error)


def remove_unfinished(record_id: str, backends: Backends) -> None:
    """Remove a record that never became ready: its unfinished uploads and objects first, then the row."""
    try:
        old = backends.repo.get(record_id)
    except NotFound:
        return  # already gone, or not ours: nothing to clean
    if old.status is Status.READY:
        return  # never delete a good record because a retry or discard was asked for
    if old.user_id != backends.owner:
        # A fellow member's (or, for a viewer, anyone's) unfinished upload in a study the caller sees: its
        # objects are not theirs to remove (lib.studies.RecordRights.manage_files: the uploader's alone).
        return
    folder = record_folder(old.s3_key)
    backends.store.abort_multipart_uploads(folder, owner=backends.space)
    keys = {o.key for o in backends.store.iter_objects(folder, owner=backends.space)}
    result = backends.store.delete(sorted(keys), owner=backends.space) if keys else None
    if result is None or not result.errors:
        # The row goes only once its objects are gone, so nothing is left that no row points at.
        backends.server.delete(record_id)
