"""My files: the search/filter bar, the recordings table and its paging.

Only the page on screen is fetched (``repo.list`` pages in the database) and
only its thumbnails are presigned. The table's selection lives in
``st.session_state[TABLE_KEY]`` and is cleared whenever the filters or the
page change, since row positions then mean other recordings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from lib.library import LinkCache, quick_look_hr, thumbnail_urls
from lib.records import FileRecord, ListQuery, RecordPage, Status
from lib.repository import Repository

TABLE_KEY = "pv_user_files_table"
PAGE_KEY = "pv_user_files_page"
PAGE_SIZE_KEY = "pv_user_files_page_size"
LINKS_KEY = "pv_user_files_links"
KNOWN_TAGS_KEY = "pv_user_files_known_tags"
SIGNATURE_KEY = "pv_user_files_query_signature"
PAGE_SIZES = (25, 50, 100, 200)
SORTS: dict[str, str] = {
    "Uploaded": "created_at", "Name": "original_name", "Size": "size_bytes", "Duration": "duration_s",
    "Subject": "subject_id", "Session": "session_label", "Status": "status", "Frame rate": "fps",
}
LOSSLESS_CHOICES: dict[str, bool | None] = {"Any": None, "Lossless only": True, "Lossy only": False}
STATUS_LABELS = {Status.READY: "ready", Status.PENDING: "pending", Status.FAILED: "failed"}


@dataclass(frozen=True)
class Filters:
    """What the filter bar asks for; paging is added once the total is known."""

    text: str
    statuses: tuple[Status, ...]
    tags: tuple[str, ...]
    date_from: date | None
    date_to: date | None
    lossless: bool | None
    sort: str
    descending: bool
    page_size: int

    def query(self, page: int) -> ListQuery:
        return ListQuery(text=self.text, statuses=self.statuses, tags=self.tags, date_from=self.date_from,
                         date_to=self.date_to, lossless=self.lossless, sort=self.sort,
                         descending=self.descending, page=page, page_size=self.page_size)


def link_cache() -> LinkCache:
    if LINKS_KEY not in st.session_state:
        st.session_state[LINKS_KEY] = LinkCache()
    return st.session_state[LINKS_KEY]


def render_filters() -> Filters:
    search, status, tags = st.columns([3, 2, 2])
    text = search.text_input("Search", key="pv_user_files_search", placeholder="name, subject, session, notes…",
                             icon=":material/search:")
    statuses = status.multiselect("Status", list(Status), key="pv_user_files_status",
                                  format_func=lambda s: STATUS_LABELS[s], placeholder="any status")
    # Tags already chosen stay among the options, or the widget would drop them.
    known = sorted({*st.session_state.get(KNOWN_TAGS_KEY, ()), *st.session_state.get("pv_user_files_tags", ())})
    chosen_tags = tags.multiselect("Tags (all of)", known, key="pv_user_files_tags", accept_new_options=True,
                                   placeholder="any tags")
    dates, lossless, sort, order, size = st.columns([3, 2, 2, 2, 1])
    picked = dates.date_input("Uploaded between", value=(), key="pv_user_files_dates", format="YYYY-MM-DD")
    lossless_label = lossless.selectbox("Compression", list(LOSSLESS_CHOICES), key="pv_user_files_lossless")
    sort_label = sort.selectbox("Sort by", list(SORTS), key="pv_user_files_sort")
    direction = order.selectbox("Order", ["Descending", "Ascending"], key="pv_user_files_order")
    page_size = size.selectbox("Per page", PAGE_SIZES, index=PAGE_SIZES.index(50), key=PAGE_SIZE_KEY)
    date_from, date_to = _date_range(picked)
    return Filters(text=text.strip(), statuses=tuple(statuses), tags=tuple(t.strip() for t in chosen_tags if t),
                   date_from=date_from, date_to=date_to, lossless=LOSSLESS_CHOICES[lossless_label],
                   sort=SORTS[sort_label], descending=direction == "Descending", page_size=page_size)


def _date_range(picked: Any) -> tuple[date | None, date | None]:
    days = [d for d in (picked if isinstance(picked, list | tuple) else [picked]) if d is not None]
    if not days:
        return None, None
    return days[0], days[-1]  # one date picked so far: that day only


def current_page(filters: Filters) -> int:
    """The page to show; back to page 1 (and no selection) whenever the filters change."""
    signature = repr(filters)
    if st.session_state.get(SIGNATURE_KEY) != signature:
        st.session_state[SIGNATURE_KEY] = signature
        st.session_state[PAGE_KEY] = 1
        clear_selection()
    return max(1, int(st.session_state.get(PAGE_KEY, 1)))


def clear_selection() -> None:
    st.session_state.pop(TABLE_KEY, None)


def render_pager(page: RecordPage) -> None:
    """Page number under the table; changing it clears the selection."""
    if st.session_state.get(PAGE_KEY) != page.page:
        st.session_state[PAGE_KEY] = page.page
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    left.number_input("Page", min_value=1, max_value=page.page_count, step=1, key=PAGE_KEY,
                      on_change=clear_selection)
    first = (page.page - 1) * page.page_size + 1 if page.total else 0
    last = (page.page - 1) * page.page_size + len(page.records)
    right.caption(f"Showing {first:,}–{last:,} of {page.total:,} recordings · page {page.page} of "
                  f"{page.page_count:,}")


def remember_tags(records: tuple[FileRecord, ...]) -> None:
    """Offer the tags seen on screen in the tag filter next time (the repository has no tag index)."""
    known = set(st.session_state.get(KNOWN_TAGS_KEY, ()))
    known.update(t for r in records for t in r.research.tags)
    st.session_state[KNOWN_TAGS_KEY] = tuple(sorted(known))[:500]


def table_frame(records: tuple[FileRecord, ...], thumbs: dict[str, str | None]) -> pd.DataFrame:
    rows = []
    for r in records:
        v = r.video
        rows.append({
            "thumbnail": thumbs.get(r.id),
            "name": r.original_name,
            "subject": r.research.subject_id,
            "session": r.research.session_label,
            "tags": list(r.research.tags),
            "duration": v.duration_s if v else None,
            "resolution": f"{v.width}×{v.height}" if v else "",
            "fps": v.fps if v else None,
            "size": r.size_bytes,
            "lossless": [("lossless" if v.lossless else "lossy")] if v else [],
            "hr": quick_look_hr(r),
            "status": [STATUS_LABELS[r.status]],
            "problem": r.error or "",
            "uploaded": pd.Timestamp(r.created_at),
        })
    return pd.DataFrame(rows, columns=list(COLUMN_CONFIG))


COLUMN_CONFIG: dict[str, Any] = {
    "thumbnail": st.column_config.ImageColumn("", width=72),
    "name": st.column_config.TextColumn("Name", width="medium"),
    "subject": st.column_config.TextColumn("Subject"),
    "session": st.column_config.TextColumn("Session"),
    "tags": st.column_config.ListColumn("Tags"),
    "duration": st.column_config.NumberColumn("Duration", format="%.1f s"),
    "resolution": st.column_config.TextColumn("Resolution"),
    "fps": st.column_config.NumberColumn("fps", format="%.1f"),
    "size": st.column_config.NumberColumn("Size", format="bytes"),  # numeric, so the grid sorts it right
    # Read-only multiselect columns draw coloured badges.
    "lossless": st.column_config.MultiselectColumn("Compression", options=["lossless", "lossy"],
                                                   color=["green", "orange"]),
    "hr": st.column_config.NumberColumn("Quick-look HR", format="%.0f bpm"),
    "status": st.column_config.MultiselectColumn("Status", options=list(STATUS_LABELS.values()),
                                                 color=["green", "gray", "red"]),
    "problem": st.column_config.TextColumn("Reason", width="medium"),
    "uploaded": st.column_config.DatetimeColumn("Uploaded (UTC)", format="YYYY-MM-DD HH:mm"),
}


def render_table(page: RecordPage, *, store: Any, repo: Repository) -> list[FileRecord]:
    """The page's rows with thumbnails; returns the selected records."""
    thumbs = thumbnail_urls(store, repo, [r.id for r in page.records], cache=link_cache())
    frame = table_frame(page.records, thumbs)
    event = st.dataframe(frame, key=TABLE_KEY, on_select="rerun", selection_mode="multi-row", hide_index=True,
                         column_config=COLUMN_CONFIG, row_height=48, width="stretch")
    rows = event.selection.rows if event is not None else []
    return [page.records[i] for i in rows if 0 <= i < len(page.records)]
