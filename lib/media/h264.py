"""Just enough of an H.264 sequence parameter set (SPS) to tell lossless and browser-playable streams.

x264 sets ``qpprime_y_zero_transform_bypass_flag`` only for ``-qp 0`` / ``-crf 0`` (best effort for other
encoders); browsers play Baseline/Main/High 8-bit 4:2:0 only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2


@dataclass(frozen=True)
class H264Sps:
    """The SPS fields the lossless and browser-playable decisions read."""

    profile_idc: int
    chroma_format_idc: int
    bit_depth: int
    transform_bypass: bool


_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
"""Profiles whose SPS carries chroma format, bit depth and the transform-bypass flag."""


def first_sps(path: Path, cap: cv2.VideoCapture) -> H264Sps | None:
    """The first SPS, from the codec extradata (MP4/MKV) or else the first packet (AVI)."""
    index = int(cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
    ok, extradata = cap.retrieve(None, index) if index > 0 else (False, None)
    sps = _sps_from(bytes(extradata.ravel())) if ok and extradata is not None else None
    if sps is None:
        packets = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            packets.set(cv2.CAP_PROP_FORMAT, -1)  # raw, undecoded packets
            ok, packet = packets.read()
            sps = _sps_from(bytes(packet.ravel())) if ok and packet is not None else None
        finally:
            packets.release()
    return sps


def _sps_from(data: bytes) -> H264Sps | None:
    if data[:1] == b"\x01" and len(data) > 8 and data[5] & 0x1F:  # avcC record
        length = int.from_bytes(data[6:8], "big")
        return _parse_sps(data[8:8 + length])
    for nal in re.split(b"\x00\x00\x01", data):
        if nal and nal[0] & 0x1F == 7:
            return _parse_sps(nal)
    return None


def _parse_sps(nal: bytes) -> H264Sps | None:
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # drop emulation-prevention bytes
    if len(rbsp) < 4:
        return None
    bits = _Bits(rbsp[3:])
    profile = rbsp[0]
    try:
        bits.ue()  # seq_parameter_set_id
        chroma, depth, bypass = 1, 8, False
        if profile in _HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.u1()  # separate_colour_plane_flag
            depth = bits.ue() + 8
            bits.ue()  # bit_depth_chroma_minus8
            bypass = bool(bits.u1())
    except IndexError:
        return None
    return H264Sps(profile, chroma, depth, bypass)


class _Bits:
    """Just enough of an H.264 bit reader: single bits and Exp-Golomb codes."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def u1(self) -> int:
        byte = self._data[self._pos >> 3]
        bit = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return bit

    def ue(self) -> int:
        zeros = 0
        while self.u1() == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("bad Exp-Golomb code")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.u1()
        return (1 << zeros) - 1 + value
