"""Quick-look rPPG: a pulse estimate and recording-quality flags for one video.

One module per stage (what rPPG-Toolbox / pyVHR do offline, trimmed to run about as fast as decoding):

1. ``frames``: ``extract_rgb`` streams the video once and keeps per-frame scalars only: timestamps,
   mean R, G, B of the skin and clipped-pixel fractions. ``face`` finds the skin: Haar detection every
   few frames, a box that glides between detections, forehead and cheek patches; without a face (a
   pre-cropped skin video) the skin-coloured pixels of the whole frame stand in, and a flag says so.
2. ``timing``: the frame rate and its stability from the timestamps; the measured span resampled onto a
   uniform grid.
3. ``methods``: the pulse wave from the RGB trace, one module per method with its paper: POS (Wang et al.
   2017), CHROM (de Haan & Jeanne 2013), GREEN (Verkruysse et al. 2008); then detrend and a zero-phase
   band-pass to the heart-rate band (a setting: 0.75–2.5 Hz at rest by default, 0.7–4 Hz for exercise).
4. ``spectrum``: heart rate at the Welch peak (refined, checked against its harmonic) with the SNR,
   and the HR track.
5. ``quality``: what makes a recording doubtful, in plain words. ``ground_truth``: reference files, one
   loader per dataset format, parsed to one ``GroundTruth``; the sync check; the reference heart rate.
6. ``analysis``: ``analyse`` strings it all together and returns a ``results.AnalysisSummary`` that
   serialises to the ``analysis`` JSON column.

``evaluation`` scores estimates against ground truth across recordings (MAE, RMSE, MAPE, Pearson r, SNR,
Bland–Altman), and ``python -m lib.rppg FILE...`` runs the quick look from a shell (``__main__``).

Whether a codec is lossless is decided once, in ``lib.media.codecs``. Nothing here imports Streamlit.
The names below are what the app and scripts use; the stages are reachable through their modules.
"""

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy)
    "analyse": "analysis",
    "summarise": "analysis",
    "RgbTrace": "frames",
    "extract_rgb": "frames",
    "load_ground_truth": "ground_truth",
    "METHODS": "methods",
    "check_method": "methods",
    "AnalysisSummary": "results",
    "QualityFlag": "results",
    "Severity": "results",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
