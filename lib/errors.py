"""One exception hierarchy for PulseVault.

Every error a researcher can meet derives from :class:`PulseVaultError`. Its
``str()`` is the user-facing message: what happened and what to do, never a
secret, a key or a traceback. Subclasses also inherit the matching builtin, so
callers can still ``except FileNotFoundError`` and the like.
"""

from __future__ import annotations


class PulseVaultError(Exception):
    """Base of every PulseVault error; the message is safe to show a user."""


class ConfigError(PulseVaultError, ValueError):
    """The configuration is incomplete or invalid."""


# --- sign-in ---------------------------------------------------------------


class AuthError(PulseVaultError, PermissionError):
    """Signing in, signing up or keeping a session alive failed."""


class InvalidCredentials(AuthError):
    """Wrong e-mail or password."""


class EmailNotConfirmed(AuthError):
    """The account exists but its e-mail address is not confirmed yet."""


class AccountExists(AuthError):
    """Sign-up for an e-mail address that already has an account."""


class SessionExpired(AuthError):
    """The session can no longer be refreshed; the user must sign in again."""


class RateLimited(AuthError):
    """The auth service asked us to slow down."""


class AuthUnavailable(AuthError, ConnectionError):
    """The auth service could not be reached."""


# --- ownership and lookups -------------------------------------------------


class AccessDenied(PulseVaultError, PermissionError):
    """The caller may not touch this object or record."""


class StudyAccessLost(AccessDenied):
    """A batch job's owner no longer holds the role its work needs in the job's study (removed, or made a
    viewer): the job stops, and nothing more is written for it."""


class KeyOwnershipError(AccessDenied):
    """An S3 key lies outside the caller's own prefix (or is malformed)."""


class NotFound(PulseVaultError, FileNotFoundError):
    """The record or object does not exist (or is not the caller's)."""


# --- input -----------------------------------------------------------------


class ValidationError(PulseVaultError, ValueError):
    """Input the user gave us is not acceptable; the message says why."""


class GroundTruthError(ValidationError):
    """A ground-truth file is unusable; the message names the file and, where known, the line and column."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None,
                 column: int | str | None = None) -> None:
        super().__init__(message)
        self.source, self.line, self.column = source, line, column


class UnsupportedMedia(ValidationError):
    """A file is not a recording we can accept (type, bytes, decodability)."""


class FileTooLarge(ValidationError):
    """A file is larger than the configured upload limit."""


class QuotaExceeded(ValidationError):
    """Storing the file would exceed the user's quota."""


class DuplicateRecording(ValidationError):
    """The same bytes are already stored and ready for this user."""

    def __init__(self, message: str, existing_id: str) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class ExportRefused(ValidationError):
    """An export cannot be made as asked (nothing selected, ground truth missing, names that collide in the
    layout, objects changed since the list was made); ``problems`` lists every reason, one sentence each."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class JobStateError(ValidationError):
    """A job (an upload, or a batch job) was asked for a step its state does not allow (say, storing a file
    twice)."""


class EngineUnavailable(PulseVaultError, ConnectionError):
    """The engine batch jobs run on (Ray: a configured cluster, or the local one) cannot be reached or started."""


# --- local files -----------------------------------------------------------


class LocalDiskError(PulseVaultError, OSError):
    """The server could not write its temporary copy of a recording (disk full, permissions)."""


# --- storage ---------------------------------------------------------------


class StorageError(PulseVaultError, OSError):
    """The object store refused or failed an operation."""


class StorageUnavailable(StorageError, ConnectionError):
    """The object store could not be reached."""


class BucketNotFound(StorageError):
    """The configured bucket does not exist."""


class StorageAccessDenied(StorageError, PermissionError):
    """The storage credentials are wrong, expired or lack a permission."""


class TransferError(StorageError):
    """Moving bytes to or from the bucket failed."""


class TransferCancelled(TransferError):
    """The user cancelled a transfer."""


class IntegrityError(TransferError):
    """What arrived in the bucket is not what was sent."""


# --- metadata --------------------------------------------------------------


class MetadataError(PulseVaultError):
    """The metadata store refused or failed an operation."""


class MetadataUnavailable(MetadataError, ConnectionError):
    """The metadata store could not be reached."""


class AuditUnavailable(MetadataError):
    """An action's audit entry could not be written, so the action was not done (lib.audit)."""


# --- analysis --------------------------------------------------------------


class AnalysisError(PulseVaultError):
    """The quick-look pulse analysis could not run on this recording."""
