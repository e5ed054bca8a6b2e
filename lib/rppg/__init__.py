"""Quick-look rPPG: a pulse estimate and recording-quality flags for one video.

One module per stage (what rPPG-Toolbox / pyVHR do offline, trimmed to run about as fast as decoding):

1. ``frames``: ``extract_rgb`` streams the video once and keeps per-frame scalars only: timestamps,
   mean R, G, B of the skin and clipped-pixel fractions. ``face`` finds the skin: Haar detection every
   few frames, a box that glides between detections, forehead and cheek patches.
2. ``timing``: the frame rate and its stability from the timestamps; the measured span resampled onto a
   uniform grid.
3. ``methods``: the pulse wave from the RGB trace, one module per method with its paper: POS (Wang et al.
   2017), CHROM (de Haan & Jeanne 2013), GREEN (Verkruysse et al. 2008); then detrend and a 0.7–4 Hz
   zero-phase band-pass.
4. ``spectrum``: heart rate at the Welch peak (refined) with the de Haan SNR, and the HR track.
5. ``quality``: what makes a recording doubtful, in plain words. ``ground_truth``: reference pulse files,
   one loader per format, and the reference heart rate.
6. ``analysis``: ``analyse`` strings it all together and returns a ``results.AnalysisSummary`` that
   serialises to the ``analysis`` JSON column.

Whether a codec is lossless is decided once, in ``lib.media.codecs``. Nothing here imports Streamlit.
The names below are what the app and scripts use; the stages are reachable through their modules.
"""

from lib.rppg.analysis import analyse, summarise
from lib.rppg.frames import RgbTrace, extract_rgb
from lib.rppg.ground_truth import load_ground_truth
from lib.rppg.methods import METHODS, check_method
from lib.rppg.results import AnalysisSummary, QualityFlag, Severity

__all__ = [
    "METHODS",
    "AnalysisSummary",
    "QualityFlag",
    "RgbTrace",
    "Severity",
    "analyse",
    "check_method",
    "extract_rgb",
    "load_ground_truth",
    "summarise",
]
