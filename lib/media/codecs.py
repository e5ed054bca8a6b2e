"""What a codec is: the one table from fourcc to codec, and the one place that decides "lossless".

Both the upload probe (``lib.media.probing``) and the pulse analysis (``lib.rppg``) classify recordings
here, so a recording is never lossless to one and lossy to the other.

* Lossless: FFV1, uncompressed/raw (including RGBA/BGRA, ffmpeg's raw pixel-format tags), HuffYUV,
  UT Video, MagicYUV, Lagarith, PNG; H.264 when its SPS sets ``qpprime_y_zero_transform_bypass_flag``
  (which needs the stream, not just the fourcc). Lossless HEVC/VP9/AV1 are reported as lossy.
* ``browser_playable`` is true only for 8-bit 4:2:0 H.264 (Baseline/Main/High) in ISO-BMFF, and
  VP8/VP9/AV1 in WebM. Matroska is not a web format (Firefox and Safari refuse it) even with a VP9 inside.
"""

from __future__ import annotations

from lib.media.containers import Sniffed
from lib.media.h264 import H264Sps

_CODEC_BY_FOURCC = {
    "H264": "h264", "AVC1": "h264", "X264": "h264", "DAVC": "h264", "AVC3": "h264",
    "HEVC": "hevc", "HVC1": "hevc", "HEV1": "hevc", "H265": "hevc", "X265": "hevc",
    "VP80": "vp8", "VP8": "vp8", "VP90": "vp9", "VP9": "vp9", "VP09": "vp9", "AV01": "av1", "AV1": "av1",
    "MP4V": "mpeg4", "FMP4": "mpeg4", "XVID": "mpeg4", "DIVX": "mpeg4", "DX50": "mpeg4",
    "MP42": "msmpeg4v2", "MP43": "msmpeg4v3", "DIV3": "msmpeg4v3", "WMV2": "wmv2", "WMV3": "wmv3",
    "FLV1": "flv1", "MPG1": "mpeg1video", "MPG2": "mpeg2video", "MP2V": "mpeg2video",
    "MJPG": "mjpeg", "MJPEG": "mjpeg", "JPEG": "mjpeg", "AVDJ": "mjpeg",
    "FFV1": "ffv1", "HFYU": "huffyuv", "FFVH": "ffvhuff", "LAGS": "lagarith",
    "MPNG": "png", "PNG": "png", "PNG1": "png",
    "": "rawvideo", "DIB": "rawvideo", "RGB": "rawvideo", "RAW": "rawvideo", "I420": "rawvideo",
    "IYUV": "rawvideo", "YV12": "rawvideo", "Y800": "rawvideo", "Y8": "rawvideo", "GREY": "rawvideo",
    "YUY2": "rawvideo", "UYVY": "rawvideo", "2VUY": "rawvideo", "V210": "rawvideo", "BGR": "rawvideo",
    "RGBA": "rawvideo", "BGRA": "rawvideo",
}
LOSSLESS_CODECS = frozenset({"ffv1", "rawvideo", "huffyuv", "ffvhuff", "utvideo", "magicyuv", "lagarith", "png"})
"""Codecs that keep every pixel of every frame (the faint pulse survives them)."""
LOSSY_CODECS = frozenset({
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "msmpeg4v2", "msmpeg4v3", "wmv2", "wmv3", "flv1",
    "mpeg1video", "mpeg2video", "mjpeg",
})
"""Codecs known to discard detail; any other codec is of unknown kind."""

_H264_BROWSER_PROFILES = frozenset({66, 77, 88, 100})  # Baseline, Main, Extended, High
_PIX_420_8BIT = frozenset({b"I420", b"IYUV", b"YV12", b"NV12"})


def fourcc_bytes(value: float) -> bytes | None:
    """OpenCV's numeric fourcc property as its four bytes; ``None`` when OpenCV reports none."""
    code = int(value)
    return None if code <= 0 else code.to_bytes(4, "little")


def fourcc_text(value: float) -> str:
    """OpenCV's numeric fourcc property as text, padding removed (``"FFV1"``, ``"PNG"``, ``""``)."""
    raw = fourcc_bytes(value) or b""
    return raw.decode("latin-1").replace("\x00", "").strip()


def codec_name(fourcc: str) -> str:
    """ffmpeg's name for the codec a fourcc tags (case and padding ignored); unknown tags name themselves."""
    tag = fourcc.replace("\x00", "").strip()
    upper = tag.upper()
    if upper in _CODEC_BY_FOURCC:
        return _CODEC_BY_FOURCC[upper]
    if upper[:2] in ("UL", "UQ", "UM"):
        return "utvideo"
    if upper[:2] in ("M8", "M0", "M2"):
        return "magicyuv"
    return tag.lower() or "rawvideo"


def is_lossless(codec: str, sps: H264Sps | None = None) -> bool:
    """Whether a stream of ``codec`` (and, for H.264, this SPS) keeps every pixel."""
    return codec in LOSSLESS_CODECS or bool(codec == "h264" and sps and sps.transform_bypass)


def lossless_from_fourcc(fourcc: str) -> bool | None:
    """Lossless from the tag alone: ``None`` for a codec of unknown kind; H.264 counts as lossy here."""
    codec = codec_name(fourcc)
    if codec in LOSSLESS_CODECS:
        return True
    if codec in LOSSY_CODECS:
        return False
    return None


def browser_playable(codec: str, sniffed: Sniffed, pix_fmt: bytes | None, sps: H264Sps | None) -> bool:
    """Whether browsers play this stream in this container as it is (else it needs an H.264 proxy)."""
    if codec == "h264" and sniffed.kind == "mp4":
        if sps is not None:
            return (sps.profile_idc in _H264_BROWSER_PROFILES and sps.chroma_format_idc == 1
                    and sps.bit_depth == 8)
        return pix_fmt in _PIX_420_8BIT
    if codec in ("vp8", "vp9", "av1") and sniffed.subtype == "webm":
        return pix_fmt is None or pix_fmt in _PIX_420_8BIT
    return False
