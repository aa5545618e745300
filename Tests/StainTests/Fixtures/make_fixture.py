#!/usr/bin/env python3
"""Reference outputs for Tests/StainTests: torchstain's NumPy Macenko, and Reinhard with torchstain's L*a*b*
conversion and statistics over tissue only (pixels with L* < 90), the formulas Gigapatch's Stain module implements.

Inputs are read at test time from ../shared/data/slides (never copied here): this file holds only the coordinates,
the fitted numbers and the normalised outputs. Regenerate with:
    pip install numpy torchstain==1.4.1 openslide-python
    python3 Tests/StainTests/Fixtures/make_fixture.py > Tests/StainTests/Fixtures/stain-reference.json
"""
import base64, json, sys
import numpy as np
import openslide
from torchstain.numpy.normalizers import NumpyMacenkoNormalizer
from torchstain.numpy.utils.rgb2lab import rgb2lab
from torchstain.numpy.utils.lab2rgb import lab2rgb

SLIDE = "slides/openslide/tcga-cr-7395-01a-01-ts1.svs"
TARGET = {"x": 560, "y": 910, "size": 256}
PATCHES = [{"x": 2941, "y": 1961, "size": 64}, {"x": 3362, "y": 1961, "size": 64}, {"x": 1541, "y": 1751, "size": 64}]
LIGHTNESS = 90.0


def read(slide, r):
    return np.asarray(slide.read_region((r["x"], r["y"]), 0, (r["size"], r["size"])).convert("RGB")).copy()


def lab_of(rgb):
    lab = rgb2lab(rgb.astype("float32") / 255).astype("float32")
    return np.stack([lab[..., 0] / 2.55, lab[..., 1] - 128, lab[..., 2] - 128], axis=-1)


def tissue_stats(rgb):
    lab = lab_of(rgb).reshape(-1, 3)
    t = lab[lab[:, 0] < LIGHTNESS].astype(np.float64)
    return t.mean(axis=0), t.std(axis=0)


def reinhard(rgb, target_mean, target_std):
    lab = lab_of(rgb)
    mean, std = tissue_stats(rgb)
    out = (lab - mean) / std * target_std + target_mean
    merged = np.stack([out[..., 0] * 2.55, out[..., 1] + 128, out[..., 2] + 128], axis=-1).astype("float32")
    return (lab2rgb(merged) * 255).astype("uint8")


def main():
    slide = openslide.OpenSlide(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/" + SLIDE)
    target = read(slide, TARGET)
    mac = NumpyMacenkoNormalizer()
    mac.fit(target)
    compute = mac._NumpyMacenkoNormalizer__compute_matrices
    tmean, tstd = tissue_stats(target)
    out = {"slide": SLIDE, "target_region": TARGET,
           "macenko_target": {"hematoxylin": mac.HERef[:, 0].tolist(), "eosin": mac.HERef[:, 1].tolist(),
                              "max_concentrations": mac.maxCRef.tolist()},
           "reinhard_target": {"mean": tmean.tolist(), "std": tstd.tolist()},
           "patches": []}
    for r in PATCHES:
        rgb = read(slide, r)
        he, _, maxc = compute(rgb.reshape(-1, 3), 240, 1, 0.15)
        norm, _, _ = mac.normalize(rgb, stains=False)
        out["patches"].append({"region": r, "macenko_hematoxylin": he[:, 0].tolist(), "macenko_eosin": he[:, 1].tolist(),
                               "macenko_max_concentrations": maxc.tolist(),
                               "macenko_rgb": base64.b64encode(norm.tobytes()).decode(),
                               "reinhard_rgb": base64.b64encode(reinhard(rgb, tmean, tstd).tobytes()).decode()})
    json.dump(out, sys.stdout, indent=1)
    print()


main()
