#!/usr/bin/python3
"""Writes the thumbnail/preview goldens of tests/test_thumbnail.c with Pillow (the reference).

Run once from the project root after a deliberate change of the rule (python3-pil, Debian's
Pillow, linked to the same libjpeg-turbo as vdx: `sh scripts/deps.sh --goldens`):

    /usr/bin/python3 tests/tools/thumbnail_goldens.py [SHARED]     # SHARED defaults to ../shared

The rule, as vdx_image_thumbnail_jpeg implements it: decode, apply the EXIF orientation
(ImageOps.exif_transpose), convert to RGB; if the longer side exceeds MAX, scale it to MAX
and the shorter side to round-half-up(short * MAX / long) (never below 1, never upscaled)
with Pillow's BICUBIC resize; encode a baseline JPEG at QUALITY (Pillow's defaults: 4:2:0,
islow DCT). Written to tests/golden/thumbnails/:
  orient-N.jpg        inputs: a 120x90 crop of a real photo tagged with EXIF orientation N
  NAME.MAX.jpg        Pillow's JPEG of input NAME at MAX (quality 85)
  manifest.tsv        one line per golden: input (shared-relative or repo-relative), MAX,
                      QUALITY, width, height, golden file
"""
import io
import os
import sys

from PIL import Image, ImageOps

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
out = "tests/golden/thumbnails"
os.makedirs(out, exist_ok=True)
golden = "fixtures/golden/clip-tiny/images"


def exif_with_orientation(n):
    exif = Image.Exif()
    exif[0x0112] = n
    return exif.tobytes()


def thumbnail(path, max_side, quality):
    im = Image.open(path)
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    if w > max_side or h > max_side:
        if w >= h:
            w, h = max_side, max(1, int(h * max_side / w + 0.5))
        else:
            w, h = max(1, int(w * max_side / h + 0.5)), max_side
        im = im.resize((w, h), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return w, h, buf.getvalue()


# eight orientation inputs: an asymmetric crop of a real photo, stored so that each
# orientation's transpose gives back the crop (as a camera would write it)
src = Image.open(os.path.join(shared, golden, "real_LadyBird.jpg")).convert("RGB")
crop = src.resize((src.width * 90 // src.height, 90), Image.BICUBIC).crop((0, 0, 120, 90))
inverse = {1: None, 2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM,
           5: Image.TRANSPOSE, 6: Image.ROTATE_90, 7: Image.TRANSVERSE, 8: Image.ROTATE_270}
cases = []
for n in range(1, 9):
    stored = crop if inverse[n] is None else crop.transpose(inverse[n])
    name = f"orient-{n}.jpg"
    stored.save(os.path.join(out, name), "JPEG", quality=95, exif=exif_with_orientation(n))
    cases.append((f"tests/golden/thumbnails/{name}", os.path.join(out, name), 64, 85))

for name, max_side in [("subsampled420_1024x768.jpg", 400), ("tall_300x1500.webp", 400),
                       ("small_100x80.png", 400), ("exif_orient6_600x400.jpg", 400),
                       ("rgba_400x300.png", 400), ("palette_320x240.png", 100),
                       ("odd_225x301.jpg", 100), ("real_LadyBird.jpg", 400),
                       ("wide_2000x300.jpg", 1024)]:
    rel = f"{golden}/{name}"
    cases.append((rel, os.path.join(shared, rel), max_side, 85))

with open(os.path.join(out, "manifest.tsv"), "w") as m:
    m.write("# input\tmax_side\tquality\twidth\theight\tgolden (tests/tools/thumbnail_goldens.py)\n")
    for rel, path, max_side, quality in cases:
        w, h, jpeg = thumbnail(path, max_side, quality)
        gname = f"{os.path.basename(rel)}.{max_side}.jpg"
        with open(os.path.join(out, gname), "wb") as f:
            f.write(jpeg)
        m.write(f"{rel}\t{max_side}\t{quality}\t{w}\t{h}\t{gname}\n")
print(f"{len(cases)} goldens in {out}")
