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

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy)
    "ALLOWED_EXTENSIONS": "containers",
    "CONTENT_TYPES": "containers",
    "ContainerInfo": "containers",
    "check_extension": "containers",
    "served_as": "containers",
    "make_preview": "derivatives",
    "make_thumbnail": "derivatives",
    "needs_preview": "probing",
    "probe": "probing",
    "validate": "probing",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
