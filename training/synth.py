"""Synthetic Vietnamese plates and street-like scenes, reproducible from a seed.

`random_plate(rng)` picks a text and a layout, `render_plate` draws it flat,
`render_scene` composites plates onto procedural backgrounds with perspective,
blur, noise, lighting, glare, dirt, occlusion and JPEG artefacts, and returns
the image with the true boxes and texts. Everything draws from the
`random.Random` it is given, so a seed rebuilds the same set.

Over 300 lines: the plate formats, the drawing and the degradations are one generator, and
splitting it would scatter the one rng's order of draws that a seed depends on.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from detector.plate_format import PROVINCE_CODES, SERIES_LETTERS, SPECIAL_SERIES

# Bold sans fonts from Debian's fonts-dejavu-core, fonts-liberation and fonts-freefont-ttf.
FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
]

# (background, text) colours in BGR: private white, commercial yellow, state blue, military red
COLOURS = {
    "white": ((235, 235, 230), (20, 20, 20)),
    "yellow": ((30, 200, 240), (20, 20, 20)),
    "blue": ((150, 60, 20), (240, 240, 240)),
    "red": ((40, 40, 190), (240, 240, 240)),
}
# width:height of the physical plates, in pixels of a plate 100 px high
ASPECT = {"one_row": 4.3, "two_row_car": 2.0, "motorbike": 1.36}


@dataclass(frozen=True)
class PlateSpec:
    """What is printed: canonical text, the printed rows, layout and colour."""

    text: str
    rows: tuple[str, ...]
    layout: str  # one_row | two_row_car | motorbike
    colour: str


@dataclass(frozen=True)
class PlateBox:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in scene pixels
    spec: PlateSpec


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # BGR uint8
    plates: tuple[PlateBox, ...]


def available_fonts() -> list[str]:
    fonts = [f for f in FONT_FILES if Path(f).exists()]
    if not fonts:
        raise RuntimeError(
            "no plate fonts found; install Debian packages "
            "fonts-dejavu-core fonts-liberation fonts-freefont-ttf"
        )
    return fonts


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _digits(rng: random.Random) -> str:
    n = 5 if rng.random() < 0.8 else 4
    tail = "".join(rng.choice("0123456789") for _ in range(n))
    return f"{tail[:3]}.{tail[3:]}" if n == 5 else tail


# The province codes plates are drawn with: every seeded set (the held-out evaluation set too)
# stays as it was when Dong Nai's 39 and Ho Chi Minh City's 41 joined PROVINCE_CODES.
DRAWN_PROVINCES = sorted(PROVINCE_CODES - {39, 41})


def random_plate(rng: random.Random, layout: str | None = None) -> PlateSpec:
    """A plausible Vietnamese plate: layout, canonical text and printed rows."""
    layout = layout or rng.choices(["one_row", "two_row_car", "motorbike"], [0.5, 0.15, 0.35])[0]
    province = f"{rng.choice(DRAWN_PROVINCES):02d}"
    letters = sorted(SERIES_LETTERS)
    digits = _digits(rng)
    if layout == "motorbike":
        kind = rng.random()
        if kind < 0.75:
            series = rng.choice(letters) + rng.choice("123456789")
        elif kind < 0.9:
            series = rng.choice(letters) + rng.choice([c for c in letters if c not in "DKLNT"])
        else:
            series = "MD" + rng.choice("123456789")
        if len(series) == 2 and series.isalpha() and series in SPECIAL_SERIES:
            series = series[0] + "1"
        top = f"{province}-{series}"
        return PlateSpec(
            f"{top} {digits}", (top, digits), layout, rng.choices(list(COLOURS), [0.8, 0.1, 0.05, 0.05])[0]
        )
    series = rng.choice(letters) if rng.random() < 0.85 else rng.choice(sorted(SPECIAL_SERIES - {"MD"}))
    colour = rng.choices(list(COLOURS), [0.6, 0.25, 0.1, 0.05])[0]
    if layout == "two_row_car":
        return PlateSpec(f"{province}{series}-{digits}", (f"{province}{series}", digits), layout, colour)
    return PlateSpec(f"{province}{series}-{digits}", (f"{province}{series}-{digits}",), layout, colour)


def _draw_text_box(text: str, font_path: str, size: tuple[int, int], colour, bg) -> np.ndarray:
    """Text stretched to fill a w x h box (plates use tall condensed glyphs)."""
    font = _font(font_path, 96)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 8, bottom - top + 8), bg)
    ImageDraw.Draw(img).text((4 - left, 4 - top), text, font=font, fill=colour)
    return np.asarray(img.resize(size, Image.BILINEAR))


def render_plate(spec: PlateSpec, rng: random.Random, height: int = 100) -> np.ndarray:
    """A flat, front-facing plate image (BGR)."""
    fonts = available_fonts()
    font_path = rng.choice(fonts)
    width = int(height * ASPECT[spec.layout])
    bg, fg = COLOURS[spec.colour]
    bg = tuple(int(np.clip(c + rng.randint(-20, 15), 0, 255)) for c in bg)
    plate = np.full((height, width, 3), bg, np.uint8)
    border = max(2, height // 28)
    cv2.rectangle(plate, (border, border), (width - border - 1, height - border - 1), fg, border)
    n = len(spec.rows)
    pad_x, pad_y = int(width * 0.06), int(height * (0.12 if n == 1 else 0.08))
    row_h = (height - 2 * pad_y - (n - 1) * pad_y // 2) // n
    char_w = (width - 2 * pad_x) / max(len(r) for r in spec.rows)  # glyphs as wide on every row
    for i, row in enumerate(spec.rows):
        y = pad_y + i * (row_h + pad_y // 2)
        text_w = int(min(width - 2 * pad_x, char_w * len(row)) * rng.uniform(0.88, 1.0))
        box = _draw_text_box(row, font_path, (text_w, row_h), fg, bg)
        x = (width - text_w) // 2
        plate[y:y + row_h, x:x + text_w] = box
    return plate


# ---------------------------------------------------------------- degradations

def _dirt_and_glare(plate: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = plate.shape[:2]
    out = plate.astype(np.float32)
    if rng.random() < 0.3:  # dirt: dark translucent blotches
        mask = np.zeros((h, w), np.float32)
        for _ in range(rng.randint(1, 6)):
            cv2.circle(mask, (rng.randrange(w), rng.randrange(h)), rng.randint(2, max(3, h // 6)), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(1, h / 30)) * rng.uniform(0.2, 0.5)
        out *= 1 - mask[..., None]
    if rng.random() < 0.25:  # glare: a soft bright ellipse
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(
            mask,
            (rng.randrange(w), rng.randrange(h)),
            (rng.randint(w // 8, w // 3), rng.randint(h // 6, h // 2)),
            rng.uniform(0, 180),
            0,
            360,
            1.0,
            -1,
        )
        mask = cv2.GaussianBlur(mask, (0, 0), max(2, h / 8)) * rng.uniform(0.3, 0.7)
        out = out + (255 - out) * mask[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _occlude(img: np.ndarray, quad: np.ndarray, rng: random.Random) -> None:
    """Cover a thin slice of a plate edge (a bar, a leaf, a hook): never most of the text."""
    x1, y1 = quad.min(0)
    x2, y2 = quad.max(0)
    w, h = x2 - x1, y2 - y1
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    if rng.random() < 0.5:
        cx = int(x1 + rng.choice([0.0, 1.0]) * w)
        cv2.rectangle(img, (int(cx - w * 0.04), int(y1 - 2)), (int(cx + w * 0.04), int(y2 + 2)), colour, -1)
    else:
        cy = int(y1 + rng.choice([0.0, 1.0]) * h)
        cv2.rectangle(img, (int(x1 - 2), int(cy - h * 0.06)), (int(x2 + 2), int(cy + h * 0.06)), colour, -1)


def degrade(img: np.ndarray, rng: random.Random, strength: float = 1.0) -> np.ndarray:
    """Camera effects: lighting, blur or motion blur, noise and JPEG artefacts."""
    out = img.astype(np.float32)
    gain, bias = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
    out = out * gain + bias
    if rng.random() < 0.4:  # uneven light across the frame
        h, w = out.shape[:2]
        ramp = np.linspace(
            rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.3), w if rng.random() < 0.5 else h, dtype=np.float32
        )
        out *= ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
    out = np.clip(out, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.3 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.4))
    elif r < 0.5 * strength:
        k = rng.randint(3, 7)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.5:
        noise = np.random.default_rng(rng.randrange(2**31)).normal(0, rng.uniform(2, 10), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(35, 95)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


# ---------------------------------------------------------------- scenes

def _background(rng: random.Random, width: int, height: int) -> np.ndarray:
    """Road-, wall- and car-like clutter, with distracting non-plate text."""
    base = np.array([rng.randint(30, 200) for _ in range(3)], np.float32)
    grad = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.3), height, dtype=np.float32)[:, None, None]
    img = np.clip(base[None, None, :] * grad * np.ones((height, width, 1), np.float32), 0, 255).astype(
        np.uint8
    )
    noise = np.random.default_rng(rng.randrange(2**31)).normal(
        0, rng.uniform(3, 15), (height // 4 + 1, width // 4 + 1, 1)
    )
    img = np.clip(img + cv2.resize(noise, (width, height))[..., None], 0, 255).astype(np.uint8)
    for _ in range(rng.randint(3, 12)):
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        x, y = rng.randrange(width), rng.randrange(height)
        shape = rng.random()
        if shape < 0.4:
            cv2.rectangle(
                img,
                (x, y),
                (x + rng.randint(20, 300), y + rng.randint(10, 200)),
                colour,
                -1 if rng.random() < 0.7 else 2,
            )
        elif shape < 0.7:
            cv2.ellipse(img, (x, y), (rng.randint(5, 80), rng.randint(5, 80)), 0, 0, 360, colour, -1)
        else:
            cv2.line(img, (x, y), (rng.randrange(width), rng.randrange(height)), colour, rng.randint(1, 6))
    font = rng.choice(available_fonts())
    for _ in range(rng.randint(0, 3)):  # shop signs, stickers: text that is not a plate
        word = "".join(rng.choice("ABCDEFGHKLMNPRSTUVXYZ0123456789 ") for _ in range(rng.randint(3, 10)))
        pil = Image.fromarray(img)
        ImageDraw.Draw(pil).text(
            (rng.randrange(width - 60), rng.randrange(height - 30)),
            word,
            font=_font(font, rng.randint(12, 40)),
            fill=tuple(rng.randint(0, 255) for _ in range(3)),
        )
        img = np.asarray(pil).copy()
    return img


def _paste(scene: np.ndarray, plate: np.ndarray, quad: np.ndarray) -> None:
    """Warp `plate` onto `quad` (4 corners, clockwise from top-left) of `scene`, in place."""
    h, w = plate.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    matrix = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(plate, matrix, size, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, size)
    scene[mask > 127] = warped[mask > 127]


def _quad(rng: random.Random, cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """Corners of a plate seen slightly from the side, above and rotated."""
    angle = np.deg2rad(rng.uniform(-6, 6))
    skew_x, skew_y = rng.uniform(-0.15, 0.15), rng.uniform(-0.12, 0.12)
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float32)
    pts[:, 1] *= 1 + skew_y * np.sign(pts[:, 0])  # perspective: one side taller
    pts[:, 0] *= 1 + skew_x * np.sign(pts[:, 1])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    return pts @ rot.T + np.float32([cx, cy])


def render_scene(rng: random.Random, width: int = 640, height: int = 480, n_plates: int | None = None,
                 layouts: list[str | None] | None = None) -> Scene:
    """A camera frame with 1-3 plates on vehicle-like bodies, degraded like a webcam."""
    img = _background(rng, width, height)
    n_plates = n_plates if n_plates is not None else rng.choices([1, 2, 3], [0.7, 0.2, 0.1])[0]
    placed: list[PlateBox] = []
    occupied: list[tuple[float, float, float, float]] = []
    for i in range(n_plates):
        spec = random_plate(rng, layouts[i] if layouts else None)
        for _ in range(20):  # find a free spot
            plate_h = rng.uniform(22, 110) if spec.layout == "one_row" else rng.uniform(35, 150)
            plate_w = plate_h * ASPECT[spec.layout]
            if plate_w > width * 0.6:
                continue
            cx = rng.uniform(plate_w * 0.7, width - plate_w * 0.7)
            cy = rng.uniform(plate_h * 0.9, height - plate_h * 0.9)
            body = (cx - plate_w * 1.6, cy - plate_h * 2.5, cx + plate_w * 1.6, cy + plate_h * 1.2)
            if all(body[2] < o[0] or body[0] > o[2] or body[3] < o[1] or body[1] > o[3] for o in occupied):
                break
        else:
            continue
        occupied.append(body)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        cv2.rectangle(img, (int(body[0]), int(body[1])), (int(body[2]), int(body[3])), colour, -1)
        plate = _dirt_and_glare(render_plate(spec, rng), rng)
        quad = _quad(rng, cx, cy, plate_w, plate_h)
        _paste(img, plate, quad)
        if rng.random() < 0.1:
            _occlude(img, quad, rng)
        x1, y1 = np.floor(quad.min(0)).astype(int)
        x2, y2 = np.ceil(quad.max(0)).astype(int)
        box = (max(0, x1), max(0, y1), min(width, x2), min(height, y2))
        placed.append(PlateBox(box, spec))
    return Scene(degrade(img, rng), tuple(placed))


def plate_crop(scene: Scene, plate: PlateBox, rng: random.Random, jitter: float = 0.08) -> np.ndarray:
    """The plate cut out as a detector box would cut it: a little loose or tight."""
    x1, y1, x2, y2 = plate.box
    w, h = x2 - x1, y2 - y1
    j = lambda s: int(round(rng.uniform(-jitter, jitter) * s))  # noqa: E731
    H, W = scene.image.shape[:2]
    cx1, cy1 = max(0, x1 + j(w)), max(0, y1 + j(h))
    cx2, cy2 = min(W, x2 + j(w)), min(H, y2 + j(h))
    return scene.image[cy1:cy2, cx1:cx2]


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode JPEG")
    return buf.tobytes()


def plate_sample(rng: random.Random, spec: PlateSpec | None = None) -> tuple[np.ndarray, PlateSpec]:
    """One plate as the detector would hand it to the reader: warped, degraded, loosely cropped."""
    spec = spec or random_plate(rng)
    plate_h = rng.uniform(18, 110) if spec.layout == "one_row" else rng.uniform(28, 130)
    plate_w = plate_h * ASPECT[spec.layout]
    width, height = int(plate_w * 1.5) + 8, int(plate_h * 1.8) + 8
    img = (
        _background(rng, width, height)
        if rng.random() < 0.5
        else np.full((height, width, 3), rng.randint(0, 255), np.uint8)
    )
    quad = _quad(rng, width / 2, height / 2, plate_w, plate_h)
    _paste(img, _dirt_and_glare(render_plate(spec, rng), rng), quad)
    if rng.random() < 0.05:
        _occlude(img, quad, rng)
    x1, y1 = np.floor(quad.min(0)).astype(int)
    x2, y2 = np.ceil(quad.max(0)).astype(int)
    scene = Scene(
        degrade(img, rng), (PlateBox((max(0, x1), max(0, y1), min(width, x2), min(height, y2)), spec),)
    )
    return plate_crop(scene, scene.plates[0], rng), spec


@dataclass(frozen=True)
class Vehicle:
    """One vehicle as a fixed camera sees it: its plate, drawn once, where it stands, its body's colour."""

    spec: PlateSpec
    plate: np.ndarray
    quad: np.ndarray  # the plate's corners in the frame
    body_colour: tuple[int, int, int]

    def drawn(self, background: np.ndarray, offset: tuple[float, float], rng: random.Random) -> Scene:
        """The frame with this vehicle moved by `offset` pixels, degraded a little like a webcam."""
        height, width = background.shape[:2]
        img = background.copy()
        moved = self.quad + np.float32(offset)
        x1, y1 = np.floor(moved.min(0)).astype(int)
        x2, y2 = np.ceil(moved.max(0)).astype(int)
        plate_w, plate_h = _plate_size(self.spec)
        cv2.rectangle(img, (int(x1 - plate_w), int(y1 - plate_h * 2)), (int(x2 + plate_w), int(y2 + plate_h)),
                      self.body_colour, -1)
        _paste(img, self.plate, moved)
        box = (max(0, x1), max(0, y1), min(width, x2), min(height, y2))
        return Scene(degrade(img, random.Random(rng.random()), strength=0.3), (PlateBox(box, self.spec),))


def _plate_size(spec: PlateSpec) -> tuple[float, float]:
    plate_h = 60.0 if spec.layout == "one_row" else 90.0
    return plate_h * ASPECT[spec.layout], plate_h


def _vehicle(rng: random.Random, spec: PlateSpec, cx: float, cy: float) -> Vehicle:
    plate = _dirt_and_glare(render_plate(spec, rng), rng)
    quad = _quad(rng, cx, cy, *_plate_size(spec))
    return Vehicle(spec, plate, quad, tuple(rng.randint(0, 255) for _ in range(3)))


def plate_video(rng: random.Random, frames: int, layout: str | None = None, step: float = 2.0,
                width: int = 640, height: int = 480) -> list[Scene]:
    """A vehicle whose plate drifts `step` pixels a frame across a fixed scene, like a car at a gate."""
    spec = random_plate(rng, layout)
    background = _background(rng, width, height)
    vehicle = _vehicle(rng, spec, width / 2 - step * frames / 2, height * 0.6)
    return [vehicle.drawn(background, (step * i, 0), rng) for i in range(frames)]


def gate_visits(rng: random.Random, visits: list[int], frames: int, gap: int = 0, jitter: float = 2.0,
                width: int = 640, height: int = 480) -> list[Scene]:
    """Vehicles stopping one after another at the same spot of one camera, each for `frames` frames.

    `visits` names the vehicle of each stop ([0, 1, 2]: three vehicles; [0, 1, 0]: the first one
    comes back); each stop's plate wobbles by up to `jitter` pixels a frame, and `gap` frames of the
    empty spot come between stops.
    """
    background = _background(rng, width, height)
    vehicles: dict[int, Vehicle] = {}
    scenes: list[Scene] = []
    for n, v in enumerate(visits):
        if v not in vehicles:
            vehicles[v] = _vehicle(rng, random_plate(rng), width / 2, height * 0.6)
        if n:
            scenes += [Scene(background.copy(), ()) for _ in range(gap)]
        scenes += [
            vehicles[v].drawn(background, (rng.uniform(-jitter, jitter), rng.uniform(-jitter, jitter)), rng)
            for _ in range(frames)
        ]
    return scenes


def write_y4m(path: Path, scenes: list[Scene], fps: int = 10) -> None:
    """A raw YUV4MPEG2 video, what Chromium's fake webcam plays (--use-file-for-fake-video-capture)."""
    h, w = scenes[0].image.shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for sc in scenes:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(sc.image, cv2.COLOR_BGR2YUV_I420).tobytes())
