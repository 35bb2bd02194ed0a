"""Per-method tallies and the numbers the report gives: coverage, identity leak, detectability,
background preservation and time."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .boxes import SIZE_BUCKETS, bucket_of
from .identity import SAME_PERSON_DISTANCE

COVERED = 0.7  # a face counts as hidden when this share of its box lies in the anonymized region
TOP_K = (1, 5)


def rate(hits: float, total: float) -> float | None:
    """hits / total rounded for the report; None when there was nothing to count."""
    return round(float(hits) / float(total), 4) if total else None


def by_bucket(heights: np.ndarray, hits: np.ndarray) -> dict[str, dict[str, Any]]:
    """faces / hits / rate per WIDER face-height bucket, and over all faces."""
    names = np.array([bucket_of(h) for h in heights], dtype=object)
    out = {}
    for _, _, name in SIZE_BUCKETS:
        sel = names == name
        out[name] = {"faces": int(sel.sum()), "hits": int(hits[sel].sum()), "rate": rate(hits[sel].sum(), sel.sum())}
    out["all"] = {"faces": len(hits), "hits": int(hits.sum()), "rate": rate(hits.sum(), len(hits))}
    return out


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of `a` and `b`, in O(len(a) * len(b)) memory."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    distances: np.ndarray = np.sqrt(np.maximum(squared, 0.0))
    return distances


def own_ranks(distances: np.ndarray) -> np.ndarray:
    """From (probe, gallery) distances where probe i is the anonymized gallery[i]: how many originals
    lie strictly nearer than its own (0: re-identified at top-1; ties count for the attacker)."""
    ranks: np.ndarray = np.sum(distances < np.diag(distances)[:, None], axis=1)
    return ranks


def false_match_rate(distances: np.ndarray) -> float | None:
    """Share of (anonymized face, someone else's original) pairs within the same-person distance: the
    rate a face would be "recognised" by chance. Faces without identity (a mask, a heavy blur, a poor
    original) land near many others, so the same-person rate is read against this."""
    n = len(distances)
    others = distances[~np.eye(n, dtype=bool)]
    return rate((others < SAME_PERSON_DISTANCE).sum(), others.size)


def psnr(squared_error: float, values: int) -> float | None:
    """PSNR in dB of 8-bit data; None when nothing differs (infinite)."""
    if values == 0 or squared_error == 0:
        return None
    return round(float(10 * np.log10(255.0 ** 2 * values / squared_error)), 2)


def ms_summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None}
    a = np.asarray(values)
    return {"mean": round(float(a.mean()), 2), "p50": round(float(np.percentile(a, 50)), 2),
            "p95": round(float(np.percentile(a, 95)), 2)}


@dataclass
class MethodTally:
    """What one method did to every face and background pixel of the set, image by image."""

    coverage: list[np.ndarray] = field(default_factory=list)  # covered share of every labelled face
    heights: list[np.ndarray] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)  # identity-size faces, anonymized
    hidden: list[np.ndarray] = field(default_factory=list)  # ... covered >= COVERED
    detectable: list[np.ndarray] = field(default_factory=list)  # ... the independent detector finds them
    squared_error: float = 0.0
    background: int = 0
    unchanged: int = 0
    ms: list[float] = field(default_factory=list)
    rendered: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add_background(self, original: np.ndarray, anonymized: np.ndarray, outside: np.ndarray) -> None:
        """Count the pixels outside every face region (`outside` mask) and how much they changed."""
        a = original[outside].astype(np.int64)
        b = anonymized[outside].astype(np.int64)
        self.squared_error += float(((a - b) ** 2).sum())
        self.background += int(outside.sum())
        self.unchanged += int(np.all(a == b, axis=-1).sum())

    def summary(self, gallery: np.ndarray) -> dict[str, Any]:
        """The method's numbers; `gallery` holds the originals of the identity-size faces, in order."""
        coverage = np.concatenate(self.coverage) if self.coverage else np.zeros(0)
        heights = np.concatenate(self.heights) if self.heights else np.zeros(0)
        probes = np.concatenate(self.embeddings) if self.embeddings else np.zeros((0, 128))
        hidden = np.concatenate(self.hidden) if self.hidden else np.zeros(0, bool)
        detectable = np.concatenate(self.detectable) if self.detectable else np.zeros(0, bool)
        distances = pairwise_distances(probes, gallery)
        ranks, own = own_ranks(distances), np.diag(distances)
        same = own < SAME_PERSON_DISTANCE
        identity: dict[str, Any] = {"faces": len(probes), "missed": int((~hidden).sum())}
        for k in TOP_K:
            identity[f"reid_top{k}"] = rate((ranks < k).sum(), len(ranks))
        identity["same_person"] = rate(same.sum(), len(same))
        identity["same_person_chance"] = false_match_rate(distances)
        identity["hidden_faces"] = int(hidden.sum())
        identity["reid_top1_hidden"] = rate((ranks[hidden] < 1).sum(), hidden.sum())
        identity["same_person_hidden"] = rate(same[hidden].sum(), hidden.sum())
        identity["median_distance"] = round(float(np.median(own)), 4) if len(own) else None
        return {
            "coverage": by_bucket(heights, coverage >= COVERED),
            "identity": identity,
            "utility": {"faces": len(detectable), "detectable": rate(detectable.sum(), len(detectable)),
                        "detectable_hidden": rate(detectable[hidden].sum(), hidden.sum())},
            "background": {"pixels": self.background, "unchanged": rate(self.unchanged, self.background),
                           "psnr_db": psnr(self.squared_error, self.background * 3)},
            "ms_per_image": ms_summary(self.ms),
            "rendered": dict(self.rendered),
            "failed_images": len(self.errors),
            "errors": self.errors[:10],
        }
