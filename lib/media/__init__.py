"""Recording checks and derivatives, one module per job:

- ``containers``: the extension allow-list, content types (also what a presigned GET is served as)
  and magic-byte sniffing (``ebml`` reads Matroska headers);
- ``integrity``: truncation and broken indexes (MP4 boxes, AVI idx1/OpenDML, Matroska segment);
- ``codecs``: fourcc to codec, and the one decision of "lossless" and "browser-playable" (``h264``
  reads the SPS those need);
- ``probing``: ``validate`` (the upload gate) and ``probe`` (the recording's video properties);
- ``derivatives``: the thumbnail and the H.264 preview proxy;
- ``decoding``: opening a video with OpenCV, and the ``ffmpeg`` binary.

Everything works on a file on disk and streams it: headers are read with seeks, frames are decoded one
at a time by OpenCV or by an ``ffmpeg`` subprocess (the binary ``imageio-ffmpeg`` ships), never a whole
video in memory. The names below are what the rest of the app uses; scripts and tests reach the
stages through their modules.
"""

from lib.media.containers import ALLOWED_EXTENSIONS, CONTENT_TYPES, ContainerInfo, check_extension, served_as
from lib.media.derivatives import make_preview, make_thumbnail
from lib.media.probing import needs_preview, probe, validate

__all__ = [
    "ALLOWED_EXTENSIONS",
    "CONTENT_TYPES",
    "ContainerInfo",
    "check_extension",
    "make_preview",
    "make_thumbnail",
    "needs_preview",
    "probe",
    "served_as",
    "validate",
]
