"""lib/media/codecs.py: the one classification of codecs as lossless, lossy or unknown.

The upload probe and the pulse analysis both read it; these cases pin what they agree on, including the
tags the two used to disagree about (raw RGBA/BGRA) and the spellings OpenCV hands back (padding, case).
"""

from __future__ import annotations

import pytest

from lib.media import codecs
from lib.media.h264 import H264Sps

LOSSLESS = ["FFV1", "ffv1", "HFYU", "FFVH", "LAGS", "ULRG", "ULY0", "ULH0", "M8Y2", "MPNG", "PNG ", "png",
            "RGBA", "rgba", "BGRA", "bgra", "I420", "YV12", "Y800", "DIB ", "YUY2", "", "\x00\x00\x00\x00"]
LOSSY = ["H264", "avc1", "X264", "HEVC", "hvc1", "hev1", "VP80", "VP90", "vp09", "AV01", "MP4V", "FMP4",
         "XVID", "DIVX", "DX50", "MP42", "MP43", "DIV3", "WMV2", "WMV3", "FLV1", "MPG1", "MPG2", "MP2V",
         "MJPG", "mjpg", "JPEG"]
UNKNOWN = ["????", "ABCD", "xyzw"]


@pytest.mark.parametrize("fourcc", LOSSLESS)
def test_lossless_tags(fourcc: str) -> None:
    assert codecs.lossless_from_fourcc(fourcc) is True
    assert codecs.is_lossless(codecs.codec_name(fourcc))


@pytest.mark.parametrize("fourcc", LOSSY)
def test_lossy_tags(fourcc: str) -> None:
    assert codecs.lossless_from_fourcc(fourcc) is False
    assert not codecs.is_lossless(codecs.codec_name(fourcc))


@pytest.mark.parametrize("fourcc", UNKNOWN)
def test_unknown_tags_are_neither_for_the_analysis_and_not_lossless_for_the_probe(fourcc: str) -> None:
    assert codecs.lossless_from_fourcc(fourcc) is None
    assert not codecs.is_lossless(codecs.codec_name(fourcc))  # a probe never claims what it cannot show


@pytest.mark.parametrize(
    ("fourcc", "codec"),
    [("FFV1", "ffv1"), ("avc1", "h264"), ("MJPG", "mjpeg"), ("ULRG", "utvideo"), ("M8Y2", "magicyuv"),
     ("PNG ", "png"), ("RGBA", "rawvideo"), ("", "rawvideo"), ("MP42", "msmpeg4v2"), ("XyZw", "xyzw")],
)
def test_codec_names_are_ffmpegs(fourcc: str, codec: str) -> None:
    assert codecs.codec_name(fourcc) == codec


def test_h264_is_lossless_only_with_transform_bypass() -> None:
    assert codecs.is_lossless("h264", H264Sps(244, 1, 8, transform_bypass=True))
    assert not codecs.is_lossless("h264", H264Sps(100, 1, 8, transform_bypass=False))
    assert not codecs.is_lossless("h264")
    assert not codecs.is_lossless("hevc", H264Sps(244, 1, 8, transform_bypass=True))


def test_opencv_fourcc_property_as_text() -> None:
    assert codecs.fourcc_text(float(int.from_bytes(b"PNG ", "little"))) == "PNG"
    assert codecs.fourcc_text(0.0) == ""
    assert codecs.fourcc_bytes(float(int.from_bytes(b"FFV1", "little"))) == b"FFV1"
