"""Every key PulseVault keeps in ``st.session_state`` (widget keys included), in one place.

Two kinds of key:

* the browser session's own (the auth provider, the signed-in session, the
  notice shown after the next rerun), which outlive a sign-out;
* the signed-in user's, all starting with :data:`USER_PREFIX`: signing out
  deletes every one of them (:func:`components.context.end_session`), so
  nothing of one user's work is left for whoever signs in next in that tab.

A key made here for a widget also names its element in the page: Streamlit adds
the class ``st-key-<key>`` to it, which the browser tests use.
"""

from __future__ import annotations

USER_PREFIX = "pv_user_"
"""Every key of the signed-in user's state starts with this; signing out deletes them all."""


def _user(name: str) -> str:
    return f"{USER_PREFIX}{name}"


# --- the browser session (kept across sign-out) ----------------------------------------------------------

AUTH = "pv_auth"
"""This tab's auth provider and its Supabase client."""
SESSION = "pv_session"
"""The signed-in :class:`lib.auth.Session`; absent when signed out."""
NOTICE = "pv_notice"
"""The one message shown after the next rerun (:func:`components.feedback.notify`); it must survive a
sign-out to say "You are signed out"."""
SESSION_ROW = "pv_session_row"
"""The kept session (:mod:`lib.sessions`) this tab runs on; absent when signed out."""
COOKIE_ACTION = "pv_cookie_action"
"""A cookie route the browser must post to on the next run: ("start", ticket) or ("end", "")."""
NEXT_PAGE = "pv_next_page"
"""The page a signed-out deep link asked for, to go to after signing in."""
SIDEBAR_SIGN_OUT = "sidebar_sign_out"
ACCOUNT_SIGN_OUT = "account_sign_out"
ACCOUNT_SIGN_OUT_EVERYWHERE = "account_sign_out_everywhere"
SIGN_UP_EMAIL = "sign_up_email"
SIGN_UP_PASSWORD = "sign_up_password"
SIGN_UP_REPEAT = "sign_up_repeat"
RESET_EMAIL = "reset_email"

# --- Upload page -------------------------------------------------------------------------------------------

UPLOAD_TAB = _user("upload_tab")
UPLOAD_FILES = _user("upload_files")
"""The "Files" tab's ``st.file_uploader``."""
UPLOAD_FOLDER = _user("upload_folder")
"""The "A whole folder" tab's ``st.file_uploader``."""
UPLOAD_FOLDER_TRUTH = _user("upload_folder_truth")
"""Job id → the ground-truth files the folder paired with that video (lib.folder_pairing), as this run's
uploader holds them; the job's card attaches them once the recording is stored."""
UPLOAD_ALL = _user("upload_all")
UPLOAD_JOBS = _user("upload_jobs")
"""Job id → :class:`lib.uploads.UploadJob`, in the order the files were picked."""
UPLOAD_QUEUE = _user("upload_queue")
"""Ids of jobs whose store step runs on the next rerun."""
UPLOAD_TARGET = _user("upload_target")
"""The study new picks go into ("" for the personal space)."""
UPLOAD_WORKSPACE = _user("upload_workspace")
"""This session's :class:`lib.workspace.Workspace` of local copies."""


def upload_card(part: str, job_id: str) -> str:
    """A widget of one job's card: its container, research fields, consent, confirmations, buttons."""
    return _user(f"upload_{part}_{job_id}")


# --- Large files (browser → S3) ------------------------------------------------------------------------

DIRECT_COMPONENT = _user("direct_component")
DIRECT_UPLOADS = _user("direct_uploads")
"""Fingerprint → :class:`lib.direct_upload.DirectUpload`, a cache: S3 is the truth."""
DIRECT_RESPONSES = _user("direct_responses")
"""Request id → answer, so a re-sent request gets the same answer."""
DIRECT_CONSENT = _user("direct_consent")


def direct_field(field: str) -> str:
    """A research field above the Large files uploader."""
    return _user(f"direct_{field}")


# --- My files ------------------------------------------------------------------------------------------------

FILES_SPACE = _user("files_space")
"""The study My files shows ("" for the personal space)."""
FILES_SEARCH = _user("files_search")
FILES_STATUS = _user("files_status")
FILES_TAGS = _user("files_tags")
FILES_DATES = _user("files_dates")
FILES_LOSSLESS = _user("files_lossless")
FILES_SORT = _user("files_sort")
FILES_ORDER = _user("files_order")
FILES_PAGE_SIZE = _user("files_page_size")
FILES_PAGE = _user("files_page")
FILES_QUERY_SIGNATURE = _user("files_query_signature")
"""The filters of the last run: when they change, paging starts again at page 1."""
FILES_SELECTED = _user("files_selected")
"""Ids of the selected recordings: the selection follows recordings, not row positions."""
FILES_TABLE_GENERATION = _user("files_table_generation")
"""Bumped to drop the table's selection (a new table widget; see :func:`files_table`)."""
FILES_LINKS = _user("files_links")
"""This session's :class:`lib.library.LinkCache` of presigned thumbnail and playback links."""
FILES_KNOWN_TAGS = _user("files_known_tags")
FILES_CONFIRM_DELETE = _user("files_confirm_delete")
"""(id, name) of the recordings the open delete dialog asks about."""
FILES_DELETE_SELECTED = _user("files_delete_selected")
FILES_EXPORT = _user("files_export")
FILES_DATASET = _user("files_dataset")
"""My files' "Export dataset" button."""
FILES_DATASET_SCOPE = _user("files_dataset_scope")
"""What the open export dialog may export: (the selected ids, the current filter's query)."""
FILES_DATASET_CHOICE = _user("files_dataset_choice")
"""The export dialog's radio: the selected recordings or every match of the filter."""
FILES_DATASET_LAYOUT = _user("files_dataset_layout")
FILES_DATASET_PREPARE = _user("files_dataset_prepare")
FILES_DATASET_READY = _user("files_dataset_ready")
"""((choice, layout), :class:`lib.export.PreparedExport`): the export prepared in the open dialog."""
FILES_DATASET_DOWNLOAD = _user("files_dataset_download")
FILES_DIALOG_CONFIRM = _user("files_dialog_confirm")
FILES_DIALOG_CANCEL = _user("files_dialog_cancel")
FILES_DETAIL = _user("files_detail")
"""The detail panel's container."""


def files_table(rows: str) -> str:
    """The recordings table, keyed by what it shows (a digest of its rows' ids, in order).

    Streamlit keeps a table's selection as row positions, in the browser too; when other rows are
    shown under the same key, the old positions' check marks would stay on other recordings. A new key
    for other rows makes a new table, which starts from the selected ids (:data:`FILES_SELECTED`).
    """
    return _user(f"files_table_{rows}")


def files_record(part: str, record_id: str) -> str:
    """A widget of one recording's detail panel: share, research fields, re-analyse, retry, delete."""
    return _user(f"files_{part}_{record_id}")


# --- Studies -----------------------------------------------------------------------------------------------


def studies_recordings(rows: str) -> str:
    """The Studies page's recordings table, keyed like :func:`files_table` by a digest of its rows' ids: once a
    move takes the selected row out, the new table selects nothing rather than the row that took its place."""
    return _user(f"studies_recordings_{rows}")


STUDIES_SELECTED = _user("studies_selected")
"""The id of the study the Studies page shows."""
STUDIES_NEW = _user("studies_new")
"""The "New study" form."""
STUDIES_ADD = _user("studies_add")
"""The "Add a member" form."""
STUDIES_ROLE = _user("studies_role")
"""The "Change a role" form."""
STUDIES_REMOVE = _user("studies_remove")
"""The "Remove a member" form."""
STUDIES_LEAVE = _user("studies_leave")
STUDIES_DELETE = _user("studies_delete")
STUDIES_EXPORT = _user("studies_export")
"""The Studies page's "Export dataset" button (it opens My files' export dialog, lib.export)."""
STUDIES_EXPORT_FILTER = _user("studies_export_filter")
STUDIES_RETENTION = _user("studies_retention")
"""The owner's retention-period form."""
STUDIES_ERASE_EXPIRED = _user("studies_erase_expired")
"""The owner's one-step erasure of the recordings past the retention period."""
FILES_CONFIRM_WITHDRAW = _user("files_confirm_withdraw")
"""(id, name) of the recording the open withdrawal dialog asks about."""
FILES_WITHDRAW_CONFIRM = _user("files_withdraw_confirm")
FILES_WITHDRAW_CANCEL = _user("files_withdraw_cancel")
"""The owner's "Delete this study" form."""
STUDIES_CANCEL_INVITE = _user("studies_cancel_invite")
"""The owner's "Cancel invitation" form."""
AUDIT_RECORDING = _user("audit_recording")
"""The audit trail's filters (Studies page for owners, My files for the personal space): recording, subject,
person, actions, dates; and its CSV."""
AUDIT_SUBJECT = _user("audit_subject")
AUDIT_PERSON = _user("audit_person")
AUDIT_ACTIONS = _user("audit_actions")
AUDIT_FROM = _user("audit_from")
AUDIT_TO = _user("audit_to")
AUDIT_EXPORT = _user("audit_export")
AUDIT_PERSONAL = _user("audit_personal")
"""My files' toggle that shows the personal space's audit trail."""


# --- Usage ------------------------------------------------------------------------------------------------

def account_revoke(session_id: str) -> str:
    """The Account page's "Sign out" button of one other signed-in browser."""
    return f"revoke_{session_id}"


USAGE_CSV = _user("usage_csv")
USAGE_CHECK = _user("usage_check")
"""The last check of the caller's own prefix (:class:`lib.usage.Reconciliation`)."""
USAGE_CHECK_BUTTON = _user("usage_check_button")
USAGE_CONFIRMING = _user("usage_confirming")
"""(section, kind) of the repair whose confirmation dialog is open."""
USAGE_ADMIN_OPEN = _user("usage_admin_open")
USAGE_ADMIN_SHOW = _user("usage_admin_show")
USAGE_ADMIN_REFRESH = _user("usage_admin_refresh")
USAGE_ADMIN_CSV = _user("usage_admin_csv")
USAGE_ADMIN_STUDIES = _user("usage_admin_studies")
"""The administrators' "Show every study" toggle."""
USAGE_BUCKET_CHECK = _user("usage_bucket_check")
"""The last bucket-wide check (:class:`lib.usage.BucketReconciliation`)."""
USAGE_BUCKET_CHECK_BUTTON = _user("usage_bucket_check_button")


def usage_repair(part: str, kind: str) -> str:
    """A repair button of one kind of discrepancy: ``part`` is the check ("own", "bucket") for the button
    under its table, "confirm" or "cancel" for its dialog's."""
    return _user(f"usage_{part}_{kind}")


# --- Ground truth (My files' detail panel and the Upload card) -------------------------------------------


def ground_truth(part: str, record_id: str, place: str = "files") -> str:
    """A widget of one recording's ground-truth section: ``place`` is ``files`` (My files) or ``upload``
    (an Upload card); ``part`` is ``file`` (the picker), ``form`` or ``remove``."""
    return _user(f"{place}_gt_{part}_{record_id}")


def ground_truth_notice(record_id: str) -> str:
    """What the last attach or remove said, shown in the section itself after the rerun that follows it."""
    return _user(f"gt_notice_{record_id}")


def ground_truth_auto(record_id: str) -> str:
    """Set once an Upload card has tried to attach the ground truth its folder paired: never twice."""
    return _user(f"upload_gt_auto_{record_id}")


def ground_truth_attached(record_id: str) -> str:
    """What an Upload card attached: the card holds the record as it was stored."""
    return _user(f"upload_gt_attached_{record_id}")


# --- Evaluate ----------------------------------------------------------------------------------------------

EVALUATE_GROUPING = _user("evaluate_grouping")
EVALUATE_METHOD = _user("evaluate_method")
EVALUATE_REANALYSE = _user("evaluate_reanalyse")
EVALUATE_FIGURES = _user("evaluate_figures")
EVALUATE_FIGURES_CSV = _user("evaluate_figures_csv")
EVALUATE_RECORDINGS = _user("evaluate_recordings")
EVALUATE_RECORDINGS_CSV = _user("evaluate_recordings_csv")


# --- Jobs ----------------------------------------------------------------------------------------------------

JOB_KIND = _user("job_kind")
JOB_METHOD = _user("job_method")
JOB_SCOPE = _user("job_scope")
JOB_START = _user("job_start")
JOB_STUDY_FORM = _user("job_study_form")
JOB_STUDY_SEARCH = _user("job_study_search")


def job_cancel(job_id: str) -> str:
    return _user(f"job_cancel_{job_id}")
