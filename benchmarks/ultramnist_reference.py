#!/usr/bin/env python3
"""The UltraMNIST recipe written the way the published Python generator works: whole images in NumPy memory.

This is the reference Gigapatch's tile-by-tile generator is compared with (time and peak memory per image).
It follows the same recipe (kaggle preset): 3-5 digits from a uniformly chosen sorted multiset with the class's
sum, V-shaped scale factors 1-75, pixel replication, non-overlapping boxes, a random binary checkerboard of 12-24
cells stretched to the image, an affine distortion (rotation +-45 deg, scale 0.8-1.2, shear up to 50 deg),
a 2x centre zoom, 0-4 circles and 0-4 triangles XOR-ed in, digits XOR-ed on top; then the image is saved.
It writes a plain (non-pyramidal) TIFF with Pillow when available, as the published generator writes PNG/JPEG.

Usage: ultramnist_reference.py MNIST_DIR OUT_DIR COUNT [SIZE]
"""
import gzip
import itertools
import os
import sys

import numpy as np
from scipy import ndimage


def load_mnist(directory):
    with gzip.open(os.path.join(directory, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(directory, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def multisets(total):
    return [c for n in (3, 4, 5) for c in itertools.combinations_with_replacement(range(10), n) if sum(c) == total]


def background(rng, size):
    cells = rng.integers(12, 25)
    board = rng.integers(0, 2, (cells, cells)).astype(np.uint8) * 255
    image = np.kron(board, np.ones((size // cells + 1, size // cells + 1), np.uint8))[:size, :size]
    angle, scale, shear = np.radians(rng.uniform(-45, 45)), rng.uniform(0.8, 1.2), np.radians(rng.uniform(-50, 50))
    c, s, t = np.cos(angle), np.sin(angle), np.tan(shear)
    forward = scale * np.array([[c, c * t - s], [s, s * t + c]])
    inverse = np.linalg.inv(forward) / 2  # includes the 2x centre zoom
    centre = np.array([size / 2, size / 2])
    image = ndimage.affine_transform(image, inverse, offset=centre - inverse @ centre, order=0, cval=0)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(0, 5)):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(50, 1000) * size / 4000
        image ^= (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).astype(np.uint8) * 255
    for _ in range(rng.integers(0, 5)):
        p = rng.uniform(0, size, (3, 2))
        d = [(xx - p[i, 0]) * (p[(i + 1) % 3, 1] - p[i, 1]) - (yy - p[i, 1]) * (p[(i + 1) % 3, 0] - p[i, 0]) for i in range(3)]
        inside = ((d[0] >= 0) & (d[1] >= 0) & (d[2] >= 0)) | ((d[0] <= 0) & (d[1] <= 0) & (d[2] <= 0))
        image ^= inside.astype(np.uint8) * 255
    return image


def generate(rng, images, by_digit, label, size):
    weights = np.array(list(range(38, 0, -1)) + list(range(1, 38)), float)
    weights /= weights.sum()
    choices = multisets(label)
    digits = list(choices[rng.integers(len(choices))])
    image = background(rng, size)
    boxes = []
    for d in digits:
        digit = images[rng.choice(by_digit[d])]
        placed = False
        while not placed:  # like Gigapatch: redraw the scale when 2000 positions all overlap
            factor = rng.choice(np.arange(1, 76), p=weights)
            glyph = digit[::2, ::2] if factor == 1 and rng.random() < 0.5 else np.kron(digit, np.ones((factor, factor), np.uint8))
            side = glyph.shape[0]
            for _ in range(2000):
                x, y = rng.integers(0, size - side + 1, 2)
                if all(x + side <= bx or bx + bs <= x or y + side <= by or by + bs <= y for bx, by, bs in boxes):
                    placed = True
                    break
        boxes.append((x, y, side))
        image[y:y + side, x:x + side] ^= glyph
    return image


def main():
    mnist, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    os.makedirs(out, exist_ok=True)
    images, labels = load_mnist(mnist)
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    rng = np.random.default_rng(0)
    for i in range(count):
        image = generate(rng, images, by_digit, i % 28, size)
        try:
            from PIL import Image
            Image.fromarray(image).save(os.path.join(out, f"{i:06d}.tiff"), compression="tiff_deflate")
        except ImportError:
            np.save(os.path.join(out, f"{i:06d}.npy"), image)


if __name__ == "__main__":
    main()
