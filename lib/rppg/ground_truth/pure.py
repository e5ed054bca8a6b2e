"""PURE ground truth (Stricker et al. 2014): one JSON file per recording.

``/FullPackage`` holds the pulse oximeter's packets, each with a ``Timestamp`` (ns) and ``Value.waveform``;
``/Image`` holds a ``Timestamp`` per video frame. The offset of the signal against the video comes from
the two clocks when the file has image timestamps; otherwise the signal is taken to start with the video.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform

FORMAT = "pure"
NS_PER_S = 1e9


def load(source: str, text: str) -> GroundTruth:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(source, f"is not valid JSON ({exc.msg})", exc.lineno, exc.colno) from exc
    packets = doc.get("/FullPackage") if isinstance(doc, dict) else None
    if not isinstance(packets, list) or not packets:
        raise bad(source, "has no '/FullPackage' list of pulse packets (PURE layout)")
    stamps, values = [], []
    for i, packet in enumerate(packets):
        stamps.append(_field(source, packet, i, "Timestamp"))
        values.append(_field(source, packet.get("Value") if isinstance(packet, dict) else None, i, "waveform"))
    t = np.array(stamps) / NS_PER_S
    images = doc.get("/Image")
    first_frame = _first_image(images)
    start = None if first_frame is None else float(t[0] - first_frame / NS_PER_S)
    # JSON has no rows to point at, so messages name the packet.
    return waveform(source, FORMAT, values, t=t - t[0], start_s=start,
                    origin=Origin(np.arange(len(values)), "waveform", "Timestamp", "packet"))


def _field(source: str, holder: Any, index: int, name: str) -> float:
    value = holder.get(name) if isinstance(holder, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(source, f"packet {index} of '/FullPackage' has no numeric {name!r}")
    return float(value)


def _first_image(images: Any) -> float | None:
    if not isinstance(images, list) or not images or not isinstance(images[0], dict):
        return None
    stamp = images[0].get("Timestamp")
    return float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
