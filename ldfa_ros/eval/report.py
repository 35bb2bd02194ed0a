"""The evaluation written out: `report.json` (every number), `report.md` (tables to read) and
`contact_sheet.png` (sampled faces before and after each method, to look at)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .evaluate import SHEET_PX, Evaluation, SheetRow
from .methods import BASELINES

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CONTACT_SHEET = "contact_sheet.png"
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_GAP = 4
_LABEL_W = 190
_LABEL_CHARS = 24  # of a file name per line in the label column
_HEADER_H = 46
_MISSED = (230, 40, 40)  # RGB red frame: the face was not covered


def write_report(evaluation: Evaluation, out_dir: str | Path, dataset: str) -> list[Path]:
    """Write the three files into `out_dir` (created); their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"dataset": dataset, **evaluation.report}
    paths = [out / REPORT_JSON, out / REPORT_MD, out / CONTACT_SHEET]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report))
    sheet = contact_sheet(evaluation.sheet, list(report["methods"]))
    if not cv2.imwrite(str(paths[2]), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {paths[2]}")
    return paths


def pct(value: float | None) -> str:
    """A rate as a percentage, '-' when there was nothing to measure."""
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(report: dict[str, Any]) -> str:
    """One table on privacy and one on utility, a row per method, and how to read them."""
    buckets = report["buckets"]
    ident = report["identity"]
    det = report["detector"]
    s = report["settings"]
    counts = ", ".join(f"{b}: {n}" for b, n in report["faces_by_height"].items() if b != "all")
    lines = [
        f"# ldfa eval: {report['dataset']}", "",
        f"{report['images']} images, {report['faces']} labelled faces by height ({counts}). Identity is measured on "
        f"the {ident['faces']} faces >= {ident['min_face_px']:g} px (chance: top-1 {pct(ident['chance_top1'])}, "
        f"top-5 {pct(ident['chance_top5'])}). Evaluation took {report['eval_s']:.0f} s.", "",
        f"Detector (CenterFace, threshold {s['threshold']}, scales {s['scales']}, flip {s['flip']}), shared by all "
        f"methods: precision {pct(det['precision'])} ({det['true_positives']} hits, {det['false_positives']} false "
        f"alarms), {det['ms_per_image']['mean']} ms per image; recall at IoU {det['iou']}: "
        + ", ".join(f"{b} {pct(det['recall'][b]['rate'])}" for b in buckets + ["all"]) + ".", "",
        "## Privacy", "",
        "| method | " + " | ".join(f"covered {b}" for b in buckets) + " | covered all | missed | re-id top-1 | "
        "re-id top-5 | same person (by chance) | re-id top-1 of hidden |",
        "|---" * (len(buckets) + 7) + "|",
    ]
    for name, m in report["methods"].items():
        c, i = m["coverage"], m["identity"]
        lines.append(f"| {name} | " + " | ".join(pct(c[b]["rate"]) for b in buckets) + f" | {pct(c['all']['rate'])} | "
                     f"{i['missed']} / {i['faces']} | {pct(i['reid_top1'])} | {pct(i['reid_top5'])} | "
                     f"{pct(i['same_person'])} ({pct(i['same_person_chance'])}) | {pct(i['reid_top1_hidden'])} |")
    lines += [
        "", "## Utility", "",
        "| method | detectable (dlib CNN) | detectable of hidden | background unchanged | background PSNR | "
        "ms / image (mean, p95) | faces hidden by |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        u, b, t = m["utility"], m["background"], m["ms_per_image"]
        by = ", ".join(f"{k} {v}" for k, v in m["rendered"].items()) or "-"
        psnr = "identical" if b["psnr_db"] is None else f"{b['psnr_db']:.1f} dB"
        lines.append(f"| {name} | {pct(u['detectable'])} | {pct(u['detectable_hidden'])} | {pct(b['unchanged'])} | "
                     f"{psnr} | {t['mean']}, {t['p95']} | {by} |")
    lines += _video(report, buckets)
    lines += ["", f"The untouched originals are detectable at {pct(report['reference_detectable'])}.", ""]
    for name, m in report["methods"].items():
        if m["failed_images"]:
            lines.append(f"- {name}: {m['failed_images']} image(s) failed and were blurred whole or dropped, "
                         f"e.g. {m['errors'][0]}")
    for name, why in report["unavailable"].items():
        lines.append(f"- {name}: not evaluated: {' '.join(why.split())}")
    for name, what in BASELINES.items():
        if name in report["methods"]:
            lines.append(f"- {name} (evaluation baseline): {what}")
    lines += [
        "",
        f"How to read: a face is *covered* when >= {pct(report['covered_threshold'])} of its box lies in the "
        "pixels the method may write (the pipeline's changed mask); *missed* counts identity-size faces left "
        "uncovered, which leak and are included in the re-id and same-person rates. *Re-id top-k*: share of "
        "anonymized faces whose own original is among the k nearest of all originals in dlib's face-recognition "
        "space (the goal is chance); *same person*: share still within dlib's 0.6 same-person distance of "
        "their original, and in brackets the share of pairs with *someone else's* original that close (what "
        "a face without identity scores by chance). *Detectable*: share of those faces dlib's CNN detector "
        "still finds (on a crop scaled to 120 px; higher is better for training data). *Background*: pixels "
        "outside the labelled faces (dilated like a region), unchanged share and PSNR. Time excludes the "
        "shared detection.", "",
    ]
    return "\n".join(lines)


def _video(report: dict[str, Any], buckets: list[str]) -> list[str]:
    """The video coverage table (`ldfa eval --video`), one row per carry-over mode."""
    video = report.get("video")
    if not video:
        return []
    lines = ["", "## Video (camera pan)", "",
             f"Each image panned over {video['frames_per_image']} frames at up to {video['pan_px_per_frame']} px a "
             f"frame, carry-over {video['carry_frames']} frames; coverage of every face in every frame.", "",
             "| carry-over | " + " | ".join(f"covered {b}" for b in buckets) + " | covered all | pixels changed |",
             "|---" * (len(buckets) + 3) + "|"]
    for mode, c in video["coverage"].items():
        lines.append(f"| {mode} | " + " | ".join(pct(c[b]["rate"]) for b in buckets) +
                     f" | {pct(c['all']['rate'])} | {pct(video['changed_share'][mode])} |")
    return lines


def contact_sheet(rows: list[SheetRow], methods: list[str]) -> np.ndarray:
    """RGB grid: a row per sampled face, its original crop then each method's; a red frame marks a
    face the method did not cover."""
    columns = ["original"] + methods
    cell = SHEET_PX + _GAP
    width = _LABEL_W + cell * len(columns)
    sheet = np.full((_HEADER_H + cell * max(len(rows), 1), width, 3), 255, np.uint8)
    _text(sheet, "red frame: face not covered", (_GAP, 16), (200, 0, 0))
    for c, name in enumerate(columns):
        _text(sheet, name, (_LABEL_W + c * cell + 4, _HEADER_H - 10), (0, 0, 0))
    for r, row in enumerate(rows):
        y = _HEADER_H + r * cell
        lines = [row.image[k:k + _LABEL_CHARS] for k in range(0, min(len(row.image), 3 * _LABEL_CHARS), _LABEL_CHARS)]
        for n, line in enumerate(lines + [f"face {row.height:.0f} px high"]):
            _text(sheet, line, (_GAP, y + 20 + 18 * n), (0, 0, 0))
        for c, column in enumerate(columns):
            crop = row.crops.get(column)
            if crop is None:
                continue
            x = _LABEL_W + c * cell
            sheet[y:y + SHEET_PX, x:x + SHEET_PX] = crop
            if column in row.covered and not row.covered[column]:
                cv2.rectangle(sheet, (x + 1, y + 1), (x + SHEET_PX - 2, y + SHEET_PX - 2), _MISSED, 3)
    return sheet


def _text(image: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int]) -> None:
    cv2.putText(image, text, origin, _FONT, 0.45, color, 1, cv2.LINE_AA)
