"""Makes the reference for the Telea unit test (src/repair/telea.rs): a 96×80 synthetic 16-bit RGB
picture (gradients, waves at several angles and a disc's hard edge, with detail below the 8-bit
step; made here, so no photo's terms apply), a mask of thin scratches and specks (some touching
the border), and OpenCV's Telea fill (radius 5) of each 16-bit channel.

    pip install opencv-python-headless   # 5.1.0 made the stored files
    python3 tests/data/repair/telea_reference.py
"""

import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

y, x = np.mgrid[0:80, 0:96].astype(np.float64)
rng = np.random.default_rng(31)
chans = []
for k, (a, f) in enumerate([(0.3, 0.21), (1.1, 0.13), (2.0, 0.33)]):
    wave = np.sin(f * (x * np.cos(a) + y * np.sin(a)) + k)
    disc = ((x - 60) ** 2 + (y - 30) ** 2 < 18 ** 2).astype(np.float64)
    v = 0.25 + 0.35 * x / 95 + 0.15 * y / 79 + 0.12 * wave + 0.1 * disc
    chans.append(v)
# 16-bit, with detail below the 8-bit step so the 16-bit path is exercised; BGR for cv2.imwrite.
photo = np.clip(np.stack(chans[::-1], -1) * 65535 + rng.normal(0, 120, (80, 96, 3)), 0, 65535).astype(np.uint16)
mask = np.zeros((80, 96), np.uint8)
cv2.line(mask, (0, 10), (95, 70), 255, 2)
cv2.line(mask, (30, 0), (45, 79), 255, 1)
cv2.ellipse(mask, (60, 20), (25, 12), 20, 0, 200, 255, 3)
for x, y, r in [(10, 60, 2), (80, 8, 1), (95, 40, 2), (3, 3, 1)]:
    cv2.circle(mask, (x, y), r, 255, -1)

cv2.imwrite(str(HERE / "photo.png"), photo)
cv2.imwrite(str(HERE / "mask.png"), mask)
for c, name in zip([2, 1, 0], "rgb"):
    out = cv2.inpaint(np.ascontiguousarray(photo[:, :, c]), mask, 5, cv2.INPAINT_TELEA)
    cv2.imwrite(str(HERE / f"opencv_{name}.png"), out)
print(f"{int((mask > 0).sum())} masked pixels; wrote {HERE}")
