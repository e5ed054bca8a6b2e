"""The Upload page's toolbar (Upload all) and the summary of the batch."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from components import upload_state
from components.upload_card import consent_ok
from components.upload_state import UploadItem
from lib.settings import Settings
from lib.units import human_bytes


def eligible(items: list[UploadItem], settings: Settings) -> list[UploadItem]:
    """Files "Upload all" would send: checked, not stored, no unresolved duplicate, consent given."""
    return [i for i in items if i.uploadable and consent_ok(i, settings)]


def render_toolbar(items: list[UploadItem], settings: Settings) -> None:
    ready = eligible(items, settings)
    waiting_consent = [i for i in items if i.uploadable and not consent_ok(i, settings)]
    left, right = st.columns([1, 3])
    left.button(
        f"Upload all ({len(ready)})", key="pv_user_upload_all", type="primary",
        icon=":material/cloud_upload:", disabled=not ready, on_click=_queue_all, args=(settings,),
        width="stretch",
    )
    if waiting_consent:
        right.caption(f"{len(waiting_consent)} file(s) wait for the consent confirmation.")


def _queue_all(settings: Settings) -> None:
    # Evaluated when clicked, so it sees the consent boxes as they are now.
    upload_state.queue(i.file_id for i in eligible(list(upload_state.items().values()), settings))


def render_summary(items: list[UploadItem]) -> None:
    if not any(i.status not in ("Waiting", "Checking") for i in items):
        return
    st.subheader("Summary")
    counts = Counter(i.status for i in items)
    stored = sum(i.record.size_bytes for i in items if i.record is not None)
    ready, failed, refused, other = st.columns(4)
    ready.metric("Ready", counts["Ready"], help=f"{human_bytes(stored)} stored in this batch.")
    failed.metric("Failed", counts["Upload failed"])
    refused.metric("Not accepted", counts["Not accepted"] + counts["Check failed"])
    other.metric("Waiting or skipped", len(items) - counts["Ready"] - counts["Upload failed"]
                 - counts["Not accepted"] - counts["Check failed"])
    st.dataframe(_rows(items), hide_index=True, width="stretch")


def _rows(items: list[UploadItem]) -> pd.DataFrame:
    rows = []
    for item in items:
        duplicate = item.duplicate_note if item.status == "Already stored" else ""
        detail = item.error or item.failure or duplicate
        rows.append({
            "File": item.display_name,
            "Status": item.status,
            "Size": human_bytes(item.record.size_bytes if item.record else item.size_bytes),
            "Record": item.record.id if item.record else "",
            "Details": detail or "",
        })
    return pd.DataFrame(rows)
