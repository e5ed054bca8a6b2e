"""lib/media on tiny generated videos (64x48, 1 s): sniffing, refusals, probe,
thumbnail and the H.264 preview proxy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import pytest

from lib import media
from lib.errors import FileTooLarge, PulseVaultError, UnsupportedMedia
from lib.media import containers, derivatives
from lib.media import h264 as h264_sps
from lib.records import VideoProperties
from tests.support import videos

FRAMES = 30


@pytest.fixture(scope="module")
def vdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def opencv_videos(vdir: Path) -> dict[str, Path]:
    made = {name: videos.opencv_video(vdir, name, frames=FRAMES) for name in videos.OPENCV_CODECS}
    return {name: path for name, path in made.items() if path is not None}


def _opencv(opencv_videos: dict[str, Path], name: str) -> Path:
    if name not in opencv_videos:
        pytest.skip(f"this OpenCV wheel cannot encode {name}")
    return opencv_videos[name]


@pytest.fixture(scope="module")
def h264(vdir: Path) -> Path:
    return videos.h264_mp4(vdir / "h264.mp4")


@pytest.fixture(scope="module")
def h264_lossless(vdir: Path) -> Path:
    return videos.h264_mp4(vdir / "h264_qp0.mp4", lossless=True)


# --- sniffing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "content_type"),
    [
        ("mp4v", "mp4", "video/mp4"),
        ("mjpg", "avi", "video/x-msvideo"),
        ("ffv1_avi", "avi", "video/x-msvideo"),
        ("ffv1_mkv", "matroska", "video/x-matroska"),
        ("vp8", "matroska", "video/webm"),
    ],
)
def test_sniff_each_container(opencv_videos, name, kind, content_type):
    path = _opencv(opencv_videos, name)
    info = containers.sniff_container(path, f"Subject 07/{path.name}")
    assert info == media.ContainerInfo(kind=kind, extension=path.suffix[1:], content_type=content_type)


def test_sniff_mp4_family_brands(h264, tmp_path):
    assert containers.sniff_container(h264, "clip.MOV").content_type == "video/quicktime"
    assert containers.sniff_container(h264, "clip.m4v").kind == "mp4"
    qt = tmp_path / "qt.mov"
    data = bytearray(h264.read_bytes())
    data[8:12] = b"qt  "
    qt.write_bytes(bytes(data))
    assert containers._sniff(qt.read_bytes()[:64]).subtype == "mov"


def test_webm_bytes_may_be_named_mkv_but_not_the_other_way(opencv_videos):
    webm = _opencv(opencv_videos, "vp8")
    assert containers.sniff_container(webm, "clip.mkv").content_type == "video/webm"
    wrong_name = r"not a WebM video: .* Matroska \(MKV\) video. Rename it to .mkv"
    with pytest.raises(UnsupportedMedia, match=wrong_name):
        containers.sniff_container(opencv_videos["ffv1_mkv"], "clip.webm")


def test_extension_disagreeing_with_bytes_is_refused(opencv_videos):
    avi = _opencv(opencv_videos, "mjpg")
    with pytest.raises(UnsupportedMedia) as caught:
        containers.sniff_container(avi, "take1.mp4")
    assert str(caught.value) == (
        "take1.mp4 is not an MP4 video: its bytes look like an AVI video. Rename it to .avi and try again."
    )


@pytest.mark.parametrize("name", ["notes.wmv", "noextension", "clip.mp4.exe"])
def test_extension_outside_allow_list_is_refused(h264, name):
    with pytest.raises(UnsupportedMedia, match="accepted videos: mp4, mov, m4v, avi, mkv, webm"):
        containers.sniff_container(h264, name)


def test_zero_byte_file_is_refused(tmp_path):
    path = videos.zero_byte(tmp_path / "empty.mp4")
    with pytest.raises(UnsupportedMedia, match=r"^empty.mp4 is empty \(0 bytes\).$"):
        containers.sniff_container(path, "empty.mp4")
    with pytest.raises(UnsupportedMedia, match="empty"):
        media.validate(path, "empty.mp4")


def test_text_renamed_mp4_is_refused(tmp_path):
    path = videos.text_file(tmp_path / "notes.mp4")
    with pytest.raises(UnsupportedMedia) as caught:
        media.validate(path, "notes.mp4")
    assert str(caught.value) == "notes.mp4 is not an MP4 video: its bytes look like plain text."


def test_other_known_formats_are_named(tmp_path):
    jpeg = tmp_path / "x.avi"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(UnsupportedMedia, match="look like a JPEG image"):
        containers.sniff_container(jpeg, "x.avi")


def test_too_large_is_refused_in_human_units(h264, tmp_path):
    from lib.pipeline import check_recording  # the size limit is the pipeline's, checked before the bytes

    with pytest.raises(FileTooLarge) as caught:
        check_recording(h264, "h264.mp4", max_bytes=1024, workdir=tmp_path / "w")
    assert re.fullmatch(r"h264\.mp4 is \d+\.\d KiB, over the 1\.0 KiB upload limit\.", str(caught.value))


# --- damaged files -----------------------------------------------------------------


def test_truncated_mp4_without_moov_is_refused(vdir, tmp_path):
    source = videos.h264_mp4(vdir / "moov_at_end.mp4", faststart=False)
    path = videos.truncated_copy(source, tmp_path / "cut.mp4", keep=0.6)
    with pytest.raises(UnsupportedMedia, match="truncated"):
        media.validate(path, "cut.mp4")
    with pytest.raises(UnsupportedMedia, match="truncated"):
        media.probe(path)


def test_truncated_faststart_mp4_is_refused_although_frames_decode(h264, tmp_path):
    path = videos.truncated_copy(h264, tmp_path / "cut.mp4", keep=0.8)
    with pytest.raises(UnsupportedMedia, match=r"cut.mp4 is truncated: it ends at .* KiB, but the file itself says "
                                               r"it is at least .* KiB long\.") as caught:
        media.validate(path, "cut.mp4")
    assert "'" not in str(caught.value)  # no container jargon ("its 'mdat' box") in words for the researcher


def test_mp4_without_moov_is_refused(tmp_path):
    path = tmp_path / "nomoov.mp4"
    path.write_bytes(b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom" + b"\x00\x00\x00\x10mdat" + bytes(8))
    with pytest.raises(UnsupportedMedia, match=r"no index \('moov' box\)"):
        media.validate(path, "nomoov.mp4")


def test_avi_with_broken_index_is_refused(opencv_videos, tmp_path):
    # Decided: refused with a repair hint, not accepted with a warning (see the module docstring).
    path = videos.avi_with_broken_index(_opencv(opencv_videos, "mjpg"), tmp_path / "broken.avi")
    with pytest.raises(UnsupportedMedia, match=r"broken.avi has a broken index: .* -c copy fixed.avi"):
        media.validate(path, "broken.avi")
    with pytest.raises(UnsupportedMedia, match="broken index"):
        media.probe(path)


def test_avi_without_index_is_refused(opencv_videos, tmp_path):
    path = videos.avi_without_index(_opencv(opencv_videos, "mjpg"), tmp_path / "noidx.avi")
    with pytest.raises(UnsupportedMedia, match="'idx1' index is missing"):
        media.validate(path, "noidx.avi")


def test_truncated_avi_and_mkv_are_refused(opencv_videos, tmp_path):
    for name in ("ffv1_avi", "ffv1_mkv"):
        source = _opencv(opencv_videos, name)
        path = videos.truncated_copy(source, tmp_path / source.name, keep=0.5)
        with pytest.raises(UnsupportedMedia, match="truncated"):
            media.validate(path, source.name)


def test_garbage_after_valid_header_is_undecodable(h264, tmp_path):
    data = bytearray(h264.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4:] = bytes(len(data) - mdat - 4)  # same boxes, every frame zeroed
    path = tmp_path / "zeros.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedMedia, match="cannot be"):
        media.validate(path, "zeros.mp4")


def test_valid_files_pass_validation(opencv_videos, h264):
    for path in [*opencv_videos.values(), h264]:
        assert media.validate(path, path.name).extension == path.suffix[1:]


# --- probe ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "lossless", "playable"),
    [
        ("mp4v", "mpeg4", False, False),
        ("mjpg", "mjpeg", False, False),
        ("ffv1_avi", "ffv1", True, False),
        ("ffv1_mkv", "ffv1", True, False),
        ("vp8", "vp8", False, True),
        ("raw", "rawvideo", True, False),
        ("huffyuv", "huffyuv", True, False),
    ],
)
def test_probe_opencv_written(opencv_videos, name, codec, lossless, playable):
    video = media.probe(_opencv(opencv_videos, name))
    assert isinstance(video, VideoProperties)
    assert (video.codec, video.lossless, video.browser_playable) == (codec, lossless, playable)
    assert (video.width, video.height, video.fps, video.frame_count) == (64, 48, 30.0, FRAMES)
    assert video.duration_s == pytest.approx(1.0)
    assert video.bit_rate == round(_opencv(opencv_videos, name).stat().st_size * 8 / 1.0)


def test_probe_h264(h264, h264_lossless, vdir):
    video = media.probe(h264)
    assert (video.codec, video.lossless, video.browser_playable) == ("h264", False, True)
    assert (video.width, video.height, video.frame_count) == (64, 48, 30)
    lossless = media.probe(h264_lossless)
    assert (lossless.codec, lossless.lossless, lossless.browser_playable) == ("h264", True, False)
    yuv444 = media.probe(videos.h264_mp4(vdir / "h264_444.mp4", pix_fmt="yuv444p"))
    assert (yuv444.lossless, yuv444.browser_playable) == (False, False)


def test_h264_in_matroska_is_not_browser_playable(vdir):
    path = videos.write_ffmpeg(vdir / "h264.mkv", "-c:v", "libx264", "-preset", "ultrafast",
                               "-pix_fmt", "yuv420p")
    video = media.probe(path)
    assert (video.codec, video.browser_playable, video.frame_count) == ("h264", False, 30)


def test_sps_parser_reads_the_transform_bypass_flag():
    # avcC records as x264 writes them: High (100) lossy, High 4:4:4 Predictive (244) with -qp 0.
    high = bytes.fromhex("01640014ffe10018676400" + "14acd9") + bytes(20)
    assert h264_sps._sps_from(high).profile_idc == 100
    bypass = h264_sps._parse_sps(bytes.fromhex("67f4000aaeb208f602"))
    assert (bypass.profile_idc, bypass.chroma_format_idc, bypass.transform_bypass) == (244, 1, True)


# --- thumbnail -------------------------------------------------------------------------


def test_thumbnail_skips_black_leading_frames(vdir, tmp_path):
    path = videos.write_opencv(vdir / "dark_start.avi", "MJPG", frames=60, black_frames=15)
    out = media.make_thumbnail(path, tmp_path / "thumbs" / "thumb.jpg")
    image = cv2.imread(str(out))
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"
    assert image.shape[:2] == (48, 64)
    assert image.mean() > 40 and image.std() > 10


def test_thumbnail_is_bounded(vdir, tmp_path):
    path = videos.write_opencv(vdir / "wide.avi", "MJPG", frames=10, size=(480, 240))
    image = cv2.imread(str(media.make_thumbnail(path, tmp_path / "t.jpg", max_side=100)))
    assert image.shape[:2] == (50, 100)


# --- preview ----------------------------------------------------------------------------


def _stream_info(path: Path) -> str:
    result = subprocess.run([videos.ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True, check=False)
    return next(line for line in result.stderr.splitlines() if "Video:" in line)


def test_preview_is_h264_yuv420p_faststart(opencv_videos, tmp_path):
    source = _opencv(opencv_videos, "ffv1_avi")
    fractions: list[float] = []
    out = media.make_preview(source, tmp_path / "preview.mp4", progress=fractions.append)
    info = _stream_info(out)
    assert "h264" in info and "yuv420p" in info and "64x48" in info
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart
    assert b"soun" not in data  # no audio track
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert not list(tmp_path.glob("*.part"))
    video = media.probe(out)
    assert (video.codec, video.browser_playable, video.frame_count) == ("h264", True, FRAMES)


def test_preview_scales_to_720p_with_even_sides(vdir, tmp_path):
    source = videos.write_opencv(vdir / "big.avi", "MJPG", frames=3, size=(1920, 1088))
    info = _stream_info(media.make_preview(source, tmp_path / "p.mp4"))
    assert "1270x720" in info and "yuv420p(tv" in info  # full-range MJPEG brought to TV range
    portrait = videos.write_opencv(vdir / "portrait.avi", "MJPG", frames=3, size=(722, 1283))
    assert "720x1278" in _stream_info(media.make_preview(portrait, tmp_path / "q.mp4"))
    assert derivatives.preview_size(722, 1283) == (720, 1278)


def test_preview_follows_rotation_metadata(h264, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([videos.ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(h264),
                    "-c", "copy", str(rotated)], check=True)
    assert "48x64" in _stream_info(media.make_preview(rotated, tmp_path / "p.mp4"))


@pytest.mark.parametrize(
    ("size", "expected"),
    [((640, 480), (640, 480)), ((1920, 1080), (1280, 720)), ((1080, 1920), (720, 1280)),
     ((65, 49), (64, 48)), ((2000, 800), (1280, 512))],
)
def test_preview_size(size, expected):
    assert derivatives.preview_size(*size) == expected


def test_preview_only_for_originals_browsers_cannot_play(opencv_videos, h264):
    webm = _opencv(opencv_videos, "vp8")
    for path, needed in [(h264, False), (webm, False), (opencv_videos["mjpg"], True),
                         (opencv_videos["ffv1_mkv"], True), (opencv_videos["mp4v"], True)]:
        container = containers.sniff_container(path, path.name)
        assert media.needs_preview(media.probe(path), container) is needed, path.name


def test_preview_failure_is_summarised_without_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(derivatives, "_preview_command",
                        lambda src, dst: [videos.ffmpeg_exe(), "-v", "error", "-i", str(src), str(dst)])
    bogus = tmp_path / "private" / "dir" / "in.avi"
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"RIFF\x00\x00\x00\x00AVI " + bytes(64))
    with pytest.raises(UnsupportedMedia) as caught:
        derivatives._run_ffmpeg(derivatives._preview_command(bogus, tmp_path / "o.mp4"), 1.0, None, "in.avi")
    message = str(caught.value)
    assert message.startswith("The preview of in.avi could not be made: ffmpeg says ")
    assert str(tmp_path) not in message


def test_preview_cancel_from_progress_removes_partial(opencv_videos, tmp_path):
    class Cancelled(PulseVaultError):
        pass

    def cancel(_fraction: float) -> None:
        raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        media.make_preview(_opencv(opencv_videos, "mjpg"), tmp_path / "p.mp4", progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_frames_are_never_all_loaded(opencv_videos, monkeypatch):
    # probe reads a single frame; a reader that loads every frame would call read() FRAMES times.
    reads = []
    original = cv2.VideoCapture

    class Counting:
        def __init__(self, *args):
            self._cap = original(*args)

        def read(self, *args):
            reads.append(1)
            return self._cap.read(*args)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", Counting)
    media.probe(_opencv(opencv_videos, "ffv1_avi"))
    assert len(reads) == 1
