"""Large recordings, browser → S3: the page signs, the browser sends the bytes.

:func:`render_direct_upload` draws the uploader (an ``st.components.v2``
component: ``uploader.js``/``uploader.css`` beside this file, no build step)
inside a fragment, so its requests rerun only this section. Each request from
the browser (start, sign, complete, abort) is answered by one
:mod:`lib.direct_upload` call and handed back through the component's data.
Once S3 has assembled a file, it becomes an upload job like a dropped one
(:func:`lib.uploads.browser_job`, carrying the research fields and consent
given above the uploader) and the whole page reruns: the same card
(:mod:`components.upload_card`) fetches it, checks it, shows its thumbnail,
preview, properties, badges and quick look, and stores it, with the same
duplicate choice, Retry and Discard (see :mod:`lib.pipeline.finish` for what
is kept when finishing fails).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from components import state_keys, upload_card, upload_jobs
from components.context import UserContext
from components.research_form import render_research_fields
from lib import direct_upload as du
from lib import uploads
from lib.errors import PulseVaultError
from lib.media import ALLOWED_EXTENSIONS
from lib.pipeline.backends import Backends
from lib.records import ResearchFields
from lib.settings import MIB, Settings
from lib.units import BYTE_STEP, BYTE_UNITS, human_bytes

log = logging.getLogger("pulsevault")

DIRECT_TAB = "Large files"
"""The Upload page's tab label for this uploader."""
CONCURRENCY = 4
"""Parts the browser sends at once: enough to fill a lab uplink, few enough for the browser's 6 per host."""
_KEEP_RESPONSES = 16
_UNEXPECTED = "The upload failed unexpectedly; the server log has the details."

_ASSETS = Path(__file__).parent
_COMPONENT = st.components.v2.component(
    "pulsevault.direct_upload",
    js=(_ASSETS / "uploader.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "uploader.css").read_text(encoding="utf-8"),
)


def uploader_limit_mb(settings: Settings) -> int:
    """The ``max_upload_size`` for the page's ``st.file_uploader``s: files above the threshold go direct.

    Streamlit checks this in the browser, so a larger file is refused before any of it reaches the server.
    """
    return max(1, min(settings.max_upload_bytes, settings.direct_upload_threshold_bytes) // MIB)


def default_tab(settings: Settings) -> str | None:
    """:data:`DIRECT_TAB` when every accepted file is above the threshold, or once this session used it."""
    used = any(job.browser is not None for job in upload_jobs.jobs().values())
    if settings.direct_upload_threshold_bytes <= MIB or used:
        return DIRECT_TAB
    return None


def too_large_hint(settings: Settings) -> str | None:
    """What the page says about files the ``st.file_uploader``s refuse (None if they take every size)."""
    if settings.direct_upload_threshold_bytes >= settings.max_upload_bytes:
        return None
    return (f"Files over {human_bytes(uploader_limit_mb(settings) * MIB)} go through the {DIRECT_TAB} tab, "
            "straight from your browser to storage.")


@st.fragment
def render_direct_upload(ctx: UserContext, study_id: str | None = None) -> None:
    """The browser → S3 uploader, into ``study_id`` (None: the personal space; a file keeps the space it was
    started in). Files it completes become cards of the Upload page."""
    settings = ctx.services.settings
    st.caption(
        f"For recordings over {human_bytes(settings.direct_upload_threshold_bytes)} (up to "
        f"{human_bytes(settings.max_upload_bytes)}): your browser sends the file straight to the bucket in "
        "parts, so closing the tab loses nothing — choose the same file again to resume. The server then "
        "checks it and makes the preview and quick look, and it gets a card below like any other file."
    )
    research = _research_fields(settings)
    blocked = None if _consent_ok(settings) else "Confirm the participant's consent above before uploading."
    result = _COMPONENT(key=state_keys.DIRECT_COMPONENT, data=_data(settings, blocked), on_request_change=_noop)
    request = result.get("request")
    if isinstance(request, dict) and str(request.get("id")) not in _responses():
        with st.spinner("Working…"):
            answer = _answer(request, ctx, research, study_id)
        _remember(str(request.get("id")), answer)
        if request.get("op") == "complete" and answer.get("ok"):
            st.rerun()  # the whole page: the new card below checks and stores the file
        _rerun_fragment()  # hand the answer to the browser


# --- requests from the browser -----------------------------------------------------------------------------


def _answer(request: dict[str, Any], ctx: UserContext, research: ResearchFields,
            study_id: str | None) -> dict[str, Any]:
    op = request.get("op")
    try:
        if op == "start":
            return _start(request, ctx, study_id)
        upload = _upload_for(request, ctx, study_id)
        backends = upload_card.backends(ctx, upload.study_id)
        if op == "sign":
            urls = du.sign_parts(upload, request.get("parts") or [], backends)
            return {"ok": True, "urls": urls, "expiresIn": ctx.services.store.expiry()}
        if op == "abort":
            du.cancel_upload(upload, backends)
            _uploads().pop(str(request.get("handle")), None)
            return {"ok": True}
        if op == "complete":
            parts = [(int(n), str(etag)) for n, etag in request.get("parts") or []]
            return _complete(upload, parts, research, backends)
        return {"ok": False, "error": f"Unknown request {op!r}."}
    except PulseVaultError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception:
        log.exception("direct upload request %r failed unexpectedly", op)
        return {"ok": False, "error": _UNEXPECTED}


def _start(request: dict[str, Any], ctx: UserContext, study_id: str | None) -> dict[str, Any]:
    identity = du.FileIdentity.from_client(request.get("file") or {})
    backends = upload_card.backends(ctx, study_id)
    upload = du.start_upload(identity, backends, retired=upload_jobs.retired_record_ids())
    _uploads()[identity.fingerprint] = upload
    first = list(upload.missing[: du.SIGN_BATCH]) if not upload.uploaded else []
    urls = du.sign_parts(upload, first, backends) if first else {}
    return {
        "ok": True, "handle": identity.fingerprint, "partSize": upload.part_size, "partCount": upload.part_count,
        "done": [p.part_number for p in upload.done], "uploaded": upload.uploaded, "resumed": upload.resumed,
        "urls": urls, "expiresIn": ctx.services.store.expiry(),
    }


def _upload_for(request: dict[str, Any], ctx: UserContext, study_id: str | None) -> du.DirectUpload:
    """The upload a request is about: from this session, or found again in S3 (e.g. after a restart) in the
    space the page offers now."""
    handle = str(request.get("handle"))
    upload = _uploads().get(handle)
    if upload is None:
        identity = du.FileIdentity.from_client(request.get("file") or {})
        upload = du.start_upload(identity, upload_card.backends(ctx, study_id),
                                 retired=upload_jobs.retired_record_ids())
        _uploads()[identity.fingerprint] = upload
    return upload


def _complete(upload: du.DirectUpload, parts: list[tuple[int, str]], research: ResearchFields,
              backends: Backends) -> dict[str, Any]:
    du.complete_upload(upload, parts, research, backends)
    _uploads().pop(_handle_of(upload), None)
    _hand_to_card(replace(upload, upload_id=None, done=()), research, backends.settings)
    return {"ok": True, "message": "In the bucket. The server now checks it: see its card below."}


def _hand_to_card(upload: du.DirectUpload, research: ResearchFields, settings: Settings) -> None:
    """A new upload job for the file, carrying the research fields and consent given above the uploader."""
    if upload_jobs.covering_browser_record(upload.record_id):
        return  # the browser sent "complete" again (resumed after the object was assembled)
    upload_jobs.put(uploads.browser_job(upload, research, consent=_consent_ok(settings)))


# --- page pieces -----------------------------------------------------------------------------------------


def _research_fields(settings: Settings) -> ResearchFields:
    """Fields for the recordings sent from here; read when each upload completes."""
    with st.expander("Research fields for these uploads", expanded=False, icon=":material/edit_note:"):
        research = render_research_fields(state_keys.direct_field)
    if settings.require_consent:
        st.checkbox("The participants' consent to store these recordings is on file", key=state_keys.DIRECT_CONSENT)
    return research


def _consent_ok(settings: Settings) -> bool:
    return not settings.require_consent or bool(st.session_state.get(state_keys.DIRECT_CONSENT))


def _data(settings: Settings, blocked: str | None) -> dict[str, Any]:
    return {
        "concurrency": CONCURRENCY,
        "signBatch": du.SIGN_BATCH,
        "accept": ",".join(f".{ext}" for ext in ALLOWED_EXTENSIONS),
        "hint": f"{', '.join(ALLOWED_EXTENSIONS)} · up to {human_bytes(settings.max_upload_bytes)} each",
        "blocked": blocked,
        "byteUnits": list(BYTE_UNITS),
        "byteStep": BYTE_STEP,
        "responses": _responses(),
    }


def _handle_of(upload: du.DirectUpload) -> str:
    return next((h for h, u in _uploads().items() if u.record_id == upload.record_id), "")


def _uploads() -> dict[str, du.DirectUpload]:
    return st.session_state.setdefault(state_keys.DIRECT_UPLOADS, {})


def _responses() -> dict[str, dict[str, Any]]:
    return st.session_state.setdefault(state_keys.DIRECT_RESPONSES, {})


def _remember(request_id: str, answer: dict[str, Any]) -> None:
    responses = _responses()
    responses[request_id] = answer
    for old in list(responses)[:-_KEEP_RESPONSES]:
        del responses[old]


def _rerun_fragment() -> None:
    try:
        st.rerun(scope="fragment")
    except StreamlitAPIException:  # the fragment ran as part of a full-page run
        st.rerun()


def _noop() -> None:
    """Requests are handled in the fragment body, where a spinner can be drawn and the page rerun."""
