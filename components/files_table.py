"""My files: the search/filter bar, the recordings table and its paging.

Only the page on screen is fetched (``repo.list`` pages in the database) and
only its thumbnails are presigned.

The selection follows recordings, not row positions: it is kept as record ids
(``state_keys.FILES_SELECTED``). Streamlit's table keeps its selection as row
positions, in the browser as well as on the server, so the table's key names the
rows it shows (:func:`components.state_keys.files_table`): after a search, a sort,
a filter or another page it is a new table, whose selection starts from the ids
still on screen. Chosen recordings stay selected while they are visible; the
ones that left the screen are dropped, so an action never touches a row the
researcher cannot see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from components import state_keys
from components.tables import show_table
from lib.library import LinkCache, quick_look_hr, thumbnail_urls
from lib.records import FileRecord, ListQuery, RecordPage, Status
from lib.repository import Repository
from lib.units import BYTE_UNITS, byte_unit

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
    if state_keys.FILES_LINKS not in st.session_state:
        st.session_state[state_keys.FILES_LINKS] = LinkCache()
    return st.session_state[state_keys.FILES_LINKS]


def render_filters() -> Filters:
    search, status, tags = st.columns([3, 2, 2])
    text = search.text_input("Search", key=state_keys.FILES_SEARCH, placeholder="name, subject, session, notes…",
                             icon=":material/search:")
    statuses = status.multiselect("Status", list(Status), key=state_keys.FILES_STATUS,
                                  format_func=lambda s: STATUS_LABELS[s], placeholder="any status")
    # Tags already chosen stay among the options, or the widget would drop them.
    known = sorted({*st.session_state.get(state_keys.FILES_KNOWN_TAGS, ()),
                    *st.session_state.get(state_keys.FILES_TAGS, ())})
    chosen_tags = tags.multiselect("Tags (all of)", known, key=state_keys.FILES_TAGS, accept_new_options=True,
                                   placeholder="any tags")
    dates, lossless, sort, order, size = st.columns([3, 2, 2, 2, 1])
    picked = dates.date_input("Uploaded between", value=(), key=state_keys.FILES_DATES, format="YYYY-MM-DD")
    lossless_label = lossless.selectbox("Compression", list(LOSSLESS_CHOICES), key=state_keys.FILES_LOSSLESS)
    sort_label = sort.selectbox("Sort by", list(SORTS), key=state_keys.FILES_SORT)
    direction = order.selectbox("Order", ["Descending", "Ascending"], key=state_keys.FILES_ORDER)
    page_size = size.selectbox("Per page", PAGE_SIZES, index=PAGE_SIZES.index(50),
                                key=state_keys.FILES_PAGE_SIZE)
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
    """The page to show; back to page 1 whenever the filters change."""
    signature = repr(filters)
    if st.session_state.get(state_keys.FILES_QUERY_SIGNATURE) != signature:
        st.session_state[state_keys.FILES_QUERY_SIGNATURE] = signature
        st.session_state[state_keys.FILES_PAGE] = 1
    return max(1, int(st.session_state.get(state_keys.FILES_PAGE, 1)))


def clear_selection() -> None:
    """Select nothing, even if the same rows are shown again: the next table is a new one."""
    st.session_state[state_keys.FILES_SELECTED] = ()
    st.session_state[state_keys.FILES_TABLE_GENERATION] = st.session_state.get(state_keys.FILES_TABLE_GENERATION,
                                                                               0) + 1


def render_pager(page: RecordPage) -> None:
    """Page number under the table."""
    if st.session_state.get(state_keys.FILES_PAGE) != page.page:
        st.session_state[state_keys.FILES_PAGE] = page.page
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    left.number_input("Page", min_value=1, max_value=page.page_count, step=1, key=state_keys.FILES_PAGE)
    first = (page.page - 1) * page.page_size + 1 if page.total else 0
    last = (page.page - 1) * page.page_size + len(page.records)
    right.caption(f"Showing {first:,}–{last:,} of {page.total:,} recordings · page {page.page} of "
                  f"{page.page_count:,}")


def remember_tags(records: tuple[FileRecord, ...]) -> None:
    """Offer the tags seen on screen in the tag filter next time (the repository has no tag index)."""
    known = set(st.session_state.get(state_keys.FILES_KNOWN_TAGS, ()))
    known.update(t for r in records for t in r.research.tags)
    st.session_state[state_keys.FILES_KNOWN_TAGS] = tuple(sorted(known))[:500]


def size_unit(records: tuple[FileRecord, ...]) -> tuple[str, int]:
    """One byte unit for the whole Size column (the one that suits its smallest file), so it stays a
    number the grid sorts right, in the same units as every other size the app shows."""
    return byte_unit(min((r.size_bytes for r in records if r.size_bytes), default=0))


def table_frame(records: tuple[FileRecord, ...], thumbs: dict[str, str | None]) -> pd.DataFrame:
    unit_bytes = size_unit(records)[1]
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
            "size": r.size_bytes / unit_bytes,
            "lossless": [("lossless" if v.lossless else "lossy")] if v else [],
            "hr": quick_look_hr(r),
            "status": [STATUS_LABELS[r.status]],
            "problem": r.error or "",
            "uploaded": pd.Timestamp(r.created_at),
        })
    return pd.DataFrame(rows, columns=list(column_config(BYTE_UNITS[0])))


COLUMN_CONFIG: dict[str, Any] = {
    "thumbnail": st.column_config.ImageColumn("", width=72),
    "name": st.column_config.TextColumn("Name", width="medium"),
    "subject": st.column_config.TextColumn("Subject"),
    "session": st.column_config.TextColumn("Session"),
    "tags": st.column_config.ListColumn("Tags"),
    "duration": st.column_config.NumberColumn("Duration", format="%.1f s"),
    "resolution": st.column_config.TextColumn("Resolution"),
    "fps": st.column_config.NumberColumn("fps", format="%.1f"),
    # Read-only multiselect columns draw coloured badges.
    "lossless": st.column_config.MultiselectColumn("Compression", options=["lossless", "lossy"],
                                                   color=["green", "orange"]),
    "hr": st.column_config.NumberColumn("Quick-look HR", format="%.0f bpm"),
    "status": st.column_config.MultiselectColumn("Status", options=list(STATUS_LABELS.values()),
                                                 color=["green", "gray", "red"]),
    "problem": st.column_config.TextColumn("Reason", width="medium"),
    "uploaded": st.column_config.DatetimeColumn("Uploaded (UTC)", format="YYYY-MM-DD HH:mm"),
}
"""The table's columns in order; :func:`column_config` adds the Size column in this page's unit."""
SIZE_AFTER = "fps"
"""The Size column goes after this one."""


def column_config(unit: str) -> dict[str, Any]:
    size = st.column_config.NumberColumn(f"Size ({unit})", format="%.0f" if unit == "B" else "%.1f")
    columns: dict[str, Any] = {}
    for name, column in COLUMN_CONFIG.items():
        columns[name] = column
        if name == SIZE_AFTER:
            columns["size"] = size
    return columns


def render_table(page: RecordPage, *, store: Any, repo: Repository) -> list[FileRecord]:
    """The page's rows with thumbnails; returns the selected records (and remembers their ids)."""
    thumbs = thumbnail_urls(store, repo, [r.id for r in page.records], cache=link_cache())
    frame = table_frame(page.records, thumbs)
    chosen = set(st.session_state.get(state_keys.FILES_SELECTED, ()))
    still_shown = [i for i, record in enumerate(page.records) if record.id in chosen]
    event = show_table(frame, key=table_key(page.records), on_select="rerun", selection_mode="multi-row",
                       selection_default={"selection": {"rows": still_shown}},
                       column_config=column_config(size_unit(page.records)[0]), row_height=48)
    selected = [page.records[i] for i in event.selection.rows if 0 <= i < len(page.records)]
    st.session_state[state_keys.FILES_SELECTED] = tuple(r.id for r in selected)
    return selected


def table_key(records: tuple[FileRecord, ...]) -> str:
    """The table's widget key: the same only while the same recordings are shown in the same order."""
    return state_keys.files_table(rows_digest(records, st.session_state.get(state_keys.FILES_TABLE_GENERATION, 0)))


def rows_digest(records: tuple[FileRecord, ...], generation: int = 0) -> str:
    """A short name for these recordings in this order (and the table's ``generation``), for a selectable table's
    key: a table showing other rows is a new widget, whose selection starts empty."""
    return hashlib.sha256("\n".join([str(generation), *(r.id for r in records)]).encode()).hexdigest()[:16]
