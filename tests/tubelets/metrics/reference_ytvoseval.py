"""A deliberately plain, loop-based YouTube-VIS evaluator for agreement tests.

It follows the structure of the official ``ytvos.py`` + ``ytvoseval.py``
(prepare per (video, category) lists; per-pair, per-frame IoU with pycocotools
``merge``/``area``; evaluate each (category, area range, video) with the nested
greedy loops; accumulate with Python lists; summarize) so that it can stand in
for the official code in tests. It does not share code with
``tubelets.metrics``. Two departures, both on inputs the official code crashes
on: an empty results list scores as no predictions, and a missing ``iscrowd``
reads as 0.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from pycocotools import mask as coco_mask

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = [1, 10, 100]
AREA_RNG = [[0**2, 1e5**2], [0**2, 128**2], [128**2, 256**2], [256**2, 1e5**2]]
AREA_LBL = ["all", "small", "medium", "large"]
NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def reference_evaluate(gt: dict, results: list) -> dict:
    """``{"stats": {name: value}, "per_category": {cat: AP}, "precision": ..., "recall": ...}``."""
    ev = _Evaluation(gt, results)
    ev.evaluate()
    ev.accumulate()
    return {"stats": ev.summarize(), "per_category": ev.per_category_ap(), "per_category_ap50": ev.per_category_ap(0.5),
            "precision": ev.precision, "recall": ev.recall, "cat_ids": ev.cat_ids}


def _mean_truthy(values):
    kept = [v for v in values if v]
    return np.array(kept).mean() if kept else 0


def _to_rle(seg, video):
    if isinstance(seg, list):
        return coco_mask.merge(coco_mask.frPyObjects(seg, video["height"], video["width"]))
    if isinstance(seg["counts"], list):
        return coco_mask.frPyObjects(seg, video["height"], video["width"])
    return seg


class _Evaluation:
    def __init__(self, gt, results):
        self.videos = {v["id"]: v for v in gt["videos"]}
        self.vid_ids = sorted(set(self.videos))
        self.cat_ids = sorted(set(c["id"] for c in gt["categories"]))
        self.gts = defaultdict(list)
        self.dts = defaultdict(list)
        for ann in gt.get("annotations", []):
            if ann["video_id"] not in self.videos or ann["category_id"] not in self.cat_ids:
                continue
            g = dict(ann)
            video = self.videos[g["video_id"]]
            g["segmentations"] = [_to_rle(s, video) if s else s for s in ann["segmentations"]]
            g["iscrowd"] = ann.get("iscrowd", 0)
            g["ignore"] = bool(g["iscrowd"])
            g["avg_area"] = _mean_truthy(ann["areas"])
            self.gts[g["video_id"], g["category_id"]].append(g)
        for i, res in enumerate(results):
            assert res["video_id"] in self.videos, "results on a video the ground truth does not list"
            d = dict(res)
            d["id"] = i + 1
            d["iscrowd"] = 0
            d["areas"] = [coco_mask.area(s) if s else None for s in res["segmentations"]]
            d["avg_area"] = _mean_truthy(d["areas"])
            if d["category_id"] in self.cat_ids:
                self.dts[d["video_id"], d["category_id"]].append(d)

    def _sorted_dets(self, vid, cat):
        dt = self.dts[vid, cat]
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")
        return [dt[i] for i in order][: MAX_DETS[-1]]

    def compute_iou(self, vid, cat):
        gt, dt = self.gts[vid, cat], self._sorted_dets(vid, cat)
        ious = np.zeros((len(dt), len(gt)))
        for i in range(len(dt)):
            for j in range(len(gt)):
                inter = union = 0.0
                for d, g in zip(dt[i]["segmentations"], gt[j]["segmentations"]):
                    if d and g:
                        inter += coco_mask.area(coco_mask.merge([d, g], intersect=True))
                        union += coco_mask.area(coco_mask.merge([d, g], intersect=False))
                    elif g:
                        union += coco_mask.area(g)
                    elif d:
                        union += coco_mask.area(d)
                ious[i, j] = inter / union if union > 0.0 else 0.0
        return ious

    def evaluate(self):
        self.ious = {(v, c): self.compute_iou(v, c) for v in self.vid_ids for c in self.cat_ids}
        self.eval_vids = [self.evaluate_video(v, c, rng)
                          for c in self.cat_ids for rng in AREA_RNG for v in self.vid_ids]

    def evaluate_video(self, vid, cat, rng):
        gt, dt = self.gts[vid, cat], self._sorted_dets(vid, cat)
        if not gt and not dt:
            return None
        gt_ignore_flags = [1 if (g["ignore"] or g["avg_area"] < rng[0] or g["avg_area"] > rng[1]) else 0 for g in gt]
        gt_order = list(np.argsort(gt_ignore_flags, kind="mergesort"))
        gt = [gt[i] for i in gt_order]
        gt_ig = [gt_ignore_flags[i] for i in gt_order]
        crowd = [int(g["iscrowd"]) for g in gt]
        ious = self.ious[vid, cat]
        T, D, G = len(IOU_THRS), len(dt), len(gt)
        gtm, dtm, dt_ig = np.zeros((T, G)), np.zeros((T, D)), np.zeros((T, D))
        for t_i, t in enumerate(IOU_THRS):
            for d_i, d in enumerate(dt):
                best, m = min(t, 1 - 1e-10), -1
                for g_i in range(G):
                    if gtm[t_i, g_i] > 0 and not crowd[g_i]:
                        continue
                    if m > -1 and gt_ig[m] == 0 and gt_ig[g_i] == 1:
                        break
                    iou = ious[d_i, gt_order[g_i]]
                    if iou < best:
                        continue
                    best, m = iou, g_i
                if m == -1:
                    continue
                dt_ig[t_i, d_i] = gt_ig[m]
                dtm[t_i, d_i] = gt[m]["id"]
                gtm[t_i, m] = d["id"]
        for d_i, d in enumerate(dt):
            outside = d["avg_area"] < rng[0] or d["avg_area"] > rng[1]
            for t_i in range(T):
                if dtm[t_i, d_i] == 0 and outside:
                    dt_ig[t_i, d_i] = 1
        return {"scores": [d["score"] for d in dt], "dtm": dtm, "dt_ig": dt_ig, "gt_ig": np.array(gt_ig)}

    def accumulate(self):
        T, R, K, A, M = len(IOU_THRS), len(REC_THRS), len(self.cat_ids), len(AREA_RNG), len(MAX_DETS)
        self.precision = -np.ones((T, R, K, A, M))
        self.recall = -np.ones((T, K, A, M))
        I = len(self.vid_ids)  # noqa: E741 (the official accumulate()'s name)
        for k in range(K):
            for a in range(A):
                for m, max_det in enumerate(MAX_DETS):
                    entries = [e for e in self.eval_vids[k * A * I + a * I:k * A * I + (a + 1) * I] if e is not None]
                    if entries:
                        self._accumulate_one(entries, k, a, m, max_det)

    def _accumulate_one(self, entries, k, a, m, max_det):
        scores = np.concatenate([np.asarray(e["scores"][:max_det], dtype=np.float64) for e in entries])
        order = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate([e["dtm"][:, :max_det] for e in entries], axis=1)[:, order]
        dt_ig = np.concatenate([e["dt_ig"][:, :max_det] for e in entries], axis=1)[:, order]
        gt_ig = np.concatenate([e["gt_ig"] for e in entries])
        npig = int(np.count_nonzero(gt_ig == 0))
        if npig == 0:
            return
        tps = np.logical_and(dtm, np.logical_not(dt_ig))
        fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
        tp_sum = np.cumsum(tps, axis=1).astype(np.float64)
        fp_sum = np.cumsum(fps, axis=1).astype(np.float64)
        for t in range(len(IOU_THRS)):
            tp, fp = tp_sum[t], fp_sum[t]
            nd = len(tp)
            rc = tp / npig
            pr = (tp / (fp + tp + np.spacing(1))).tolist()
            self.recall[t, k, a, m] = rc[-1] if nd else 0
            for i in range(nd - 1, 0, -1):
                if pr[i] > pr[i - 1]:
                    pr[i - 1] = pr[i]
            q = [0.0] * len(REC_THRS)
            for r_i, p_i in enumerate(np.searchsorted(rc, REC_THRS, side="left")):
                if p_i >= nd:
                    break
                q[r_i] = pr[p_i]
            self.precision[t, :, k, a, m] = np.array(q)

    def _summarize(self, ap, iou=None, area="all", max_dets=100):
        a, m = AREA_LBL.index(area), MAX_DETS.index(max_dets)
        s = self.precision[:, :, :, [a], [m]] if ap else self.recall[:, :, [a], [m]]
        if iou is not None:
            s = s[np.where(iou == IOU_THRS)[0]]
        return float(np.mean(s[s > -1])) if len(s[s > -1]) else -1.0

    def summarize(self):
        values = [self._summarize(1), self._summarize(1, iou=0.5), self._summarize(1, iou=0.75),
                  self._summarize(1, area="small"), self._summarize(1, area="medium"), self._summarize(1, area="large"),
                  self._summarize(0, max_dets=1), self._summarize(0, max_dets=10), self._summarize(0),
                  self._summarize(0, area="small"), self._summarize(0, area="medium"), self._summarize(0, area="large")]
        return dict(zip(NAMES, values))

    def per_category_ap(self, iou=None):
        out = {}
        for k, cat in enumerate(self.cat_ids):
            s = self.precision[:, :, k, 0, 2]
            if iou is not None:
                s = s[np.where(iou == IOU_THRS)[0]]
            if (s > -1).any():
                out[cat] = float(np.mean(s[s > -1]))
        return out
