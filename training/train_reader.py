"""Train an EasyOCR custom recogniser (`vn_plate`, `vn_plate_g2`) on synthetic and real plate rows, offline.

    python -m training.train_reader --samples 40000 --epochs 6
    python -m training.train_reader --resume models/vn_plate.pth --real runs/real/boxes.json
    python -m training.train_reader --network vn_plate_g2 --resume .../english_g2.pth --device cuda --real ...

--real adds the trusted boxes of the real training photos (training/real_boxes.py), each cut
--real-variants times with a jittered box; a tenth of them (by file-name hash) is held out
as the real validation rows, which then choose the best epoch. --gate N adds vn-gate's plate
crops of the training texts (training/gate_data), N cuts each, a tenth of the texts held out
with the real validation rows. Every cut after a box's first is degraded as a webcam frame is.

Each sample is a rendered plate cut as a detector box would cut it, split into rows by
the same detector.rows.split_rows the reader uses, then prepared by EasyOCR's own
get_image_list/AlignCollate, so training sees exactly what inference sees.
Writes models/NETWORK.pth next to models/NETWORK.py and models/NETWORK.yaml (--out elsewhere).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from easyocr.recognition import AlignCollate
from easyocr.utils import CTCLabelConverter, get_image_list

from detector.crops import straighten
from detector.plate_format import alnum
from detector.rows import split_rows
from training.gate_data import GATE_DIR, load_crops
from training.real_data import REAL_DIR, caption_rows, streamed_copy, trusted_boxes
from training.synth import plate_sample

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def _plate_rows(job: tuple[str, range, int]) -> tuple[list[tuple[np.ndarray, str]], int]:
    seed, indices, img_h = job
    out, skipped = [], 0
    for i in indices:
        rng = random.Random(f"{seed}:{i}")  # per index: the same samples whatever the worker count
        crop, spec = plate_sample(rng)
        images = row_images(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), img_h)
        if len(images) != len(spec.rows):  # the split failed: its label would be wrong
            skipped += 1
            continue
        out.extend((img, alnum(text)) for img, text in zip(images, spec.rows))
    return out, skipped


def row_samples(seed: str, count: int, img_h: int, workers: int = 1) -> list[tuple[np.ndarray, str]]:
    """(EasyOCR-resized grey row, label) pairs from `count` plates, rendered by `workers` processes."""
    step = -(-count // max(1, workers))
    jobs = [(seed, range(start, min(count, start + step)), img_h) for start in range(0, count, step)]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_plate_rows, jobs)
    else:
        parts = [_plate_rows(job) for job in jobs]
    out = [row for rows, _ in parts for row in rows]
    skipped = sum(n for _, n in parts)
    print(f"{seed}: {len(out)} rows from {count} plates ({skipped} with a wrong row split skipped)")
    return out


def degrade(grey: np.ndarray, rng: random.Random) -> np.ndarray:
    """A plate as a webcam frame shows it: re-lit, resampled off the pixel grid at a smaller size,
    sometimes blurred, JPEG-recompressed. Reads on clean crops that fail after a sub-pixel shift and
    a q85 copy were most of the live path's misses (BENCHMARKS.md, seventeenth session)."""
    grey = np.clip(grey * rng.uniform(0.6, 1.3) + rng.uniform(-40, 40), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        h, w = grey.shape
        scale = rng.uniform(0.5, 1.0)
        shift = np.float32([[scale, 0, rng.uniform(-0.5, 0.5)], [0, scale, rng.uniform(-0.5, 0.5)]])
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        grey = cv2.warpAffine(grey, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.3:
        grey = cv2.GaussianBlur(grey, (3, 3), rng.uniform(0.3, 1.2))
    if rng.random() < 0.6:
        _, jpeg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 90)])
        grey = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    return grey


def row_images(grey: np.ndarray, img_h: int) -> list[np.ndarray]:
    """A levelled plate crop cut into rows by the reader's own split, each resized as EasyOCR does."""
    boxes = [[0, grey.shape[1], y0, y1] for y0, y1 in split_rows(grey)]
    return [img for _, img in get_image_list(boxes, [], grey, model_height=img_h)[0]]


def real_row_samples(
    boxes_json: Path, img_h: int, variants: int, root: Path, streamed: float = 0.0
) -> tuple[list, list]:
    """(train, val) rows of the trusted real boxes, labelled from their captions; a `streamed` share of the
    jittered cuts is cut from the photo as a webcam streams it (moved by under a pixel, JPEG again)."""
    train, val, skipped = [], [], 0
    for p, held_out in trusted_boxes(boxes_json):
        photo = cv2.imread(str(root / "images" / p["file"]), cv2.IMREAD_GRAYSCALE)
        rng = random.Random(p["file"])
        for v in range(1 if held_out else variants):
            image = photo
            if v and rng.random() < streamed:
                image = streamed_copy(photo, rng)
            x1, y1, x2, y2 = p["box"]
            if v:  # a detector never cuts the same box twice
                w, h = x2 - x1, y2 - y1
                x1, x2 = x1 + round(rng.uniform(-0.06, 0.04) * w), x2 + round(rng.uniform(-0.04, 0.06) * w)
                y1, y2 = y1 + round(rng.uniform(-0.08, 0.06) * h), y2 + round(rng.uniform(-0.06, 0.08) * h)
            grey = image[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
            if grey.shape[0] < 8 or grey.shape[1] < 8:
                continue
            grey = straighten(grey)  # as the reader turns every crop level (reader.level)
            images = row_images(degrade(grey, rng) if v else grey, img_h)
            labels = caption_rows(p["caption"], len(images))
            if labels is None:
                skipped += 1
                continue
            (val if held_out else train).extend(zip(images, labels))
    print(f"real: {len(train)} training rows, {len(val)} validation rows ({skipped} cuts whose row split "
          "does not match the caption skipped)")
    return train, val


def gate_row_samples(img_h: int, variants: int, root: Path) -> tuple[list, list]:
    """(train, val) rows of vn-gate's plate crops (training/gate_data: never its evaluation texts)."""
    train, val, skipped = [], [], 0
    for crop in load_crops(root):
        image = cv2.imread(str(crop.path), cv2.IMREAD_GRAYSCALE)
        rng = random.Random(crop.path.name)
        for v in range(1 if crop.validation else variants):
            grey = image
            if v:  # the crops are cut tight: cut a little tighter still, never wider
                h, w = image.shape
                grey = image[round(rng.uniform(0, 0.04) * h):h - round(rng.uniform(0, 0.04) * h),
                             round(rng.uniform(0, 0.03) * w):w - round(rng.uniform(0, 0.03) * w)]
                grey = degrade(straighten(grey), rng)
            else:
                grey = straighten(grey)
            images = row_images(grey, img_h)
            if len(images) != len(crop.rows):
                skipped += 1
                continue
            (val if crop.validation else train).extend(zip(images, crop.rows))
    print(f"gate: {len(train)} training rows, {len(val)} validation rows ({skipped} cuts whose row split "
          "does not match the text skipped)")
    return train, val


def batch_plan(samples, batch_size: int, img_h: int, max_width: int, shuffle: bool, rng) -> list:
    """(width, sample indices) of each batch: rows padded to one width a batch, the width EasyOCR
    pads a row to when it reads it (its ratio rounded up, times the height), so training sees
    what inference sees and pads less (a 64 px row at 192 wide trains 2.6x faster than at 384)."""
    by_width: dict[int, list[int]] = {}
    for i, (img, _) in enumerate(samples):
        by_width.setdefault(min(max_width, math.ceil(img.shape[1] / img_h) * img_h), []).append(i)
    plan = []
    for width, order in sorted(by_width.items()):
        if shuffle:
            rng.shuffle(order)
        plan += [(width, order[start:start + batch_size]) for start in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(plan)
    return plan


def batches(samples, batch_size: int, img_h: int, max_width: int, shuffle: bool, rng):
    from PIL import Image

    for width, order in batch_plan(samples, batch_size, img_h, max_width, shuffle, rng):
        collate = AlignCollate(imgH=img_h, imgW=width, keep_ratio_with_pad=True)
        yield collate([Image.fromarray(samples[i][0], "L") for i in order]), [samples[i][1] for i in order]


def evaluate(model, samples, img_h: int, max_width: int, converter, device: str = "cpu") -> float:
    model.eval()
    right = 0
    with torch.no_grad():
        for images, texts in batches(samples, 256, img_h, max_width, False, None):
            preds = model(images.to(device), None).log_softmax(2)
            idx = preds.argmax(2).cpu()
            sizes = torch.IntTensor([preds.size(1)] * preds.size(0))
            decoded = converter.decode_greedy(idx.view(-1).numpy(), sizes)
            right += sum(d == t for d, t in zip(decoded, texts))
    model.train()
    return right / max(1, len(samples))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=40000, help="training plates (rows are 1.5x that)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (leave a core for other work)")
    ap.add_argument("--workers", type=int, default=1, help="processes that render the synthetic plates")
    ap.add_argument(
        "--network", default="vn_plate", help="the network: models/NETWORK.py and models/NETWORK.yaml"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="where the weights go (default: models/NETWORK.pth)"
    )
    ap.add_argument(
        "--resume", type=Path, help="start from these weights (an earlier NETWORK.pth) instead of scratch"
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument(
        "--seed", default="reader-train", help="seed of the training plates (a new one adds fresh data)"
    )
    ap.add_argument(
        "--real", type=Path, help="trusted real boxes (runs/real/boxes.json from training.real_boxes)"
    )
    ap.add_argument("--real-variants", type=int, default=4, help="jittered cuts of each real training box")
    ap.add_argument("--streamed", type=float, default=0.0,
                    help="share of the jittered real cuts cut from the photo as a webcam streams it")
    ap.add_argument("--real-dir", type=Path, default=REAL_DIR)
    ap.add_argument(
        "--gate", type=int, default=0, metavar="VARIANTS",
        help="also vn-gate's plate crops (training side), each cut this many times (0: none)",
    )
    ap.add_argument("--gate-dir", type=Path, default=GATE_DIR)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    out = args.out or MODELS / f"{args.network}.pth"
    config = yaml.safe_load((MODELS / f"{args.network}.yaml").read_text())
    img_h, width = config["imgH"], config["imgH"] * 6
    converter = CTCLabelConverter(config["character_list"], {}, {})
    import importlib
    import sys

    sys.path.insert(0, str(MODELS))
    network = importlib.import_module(args.network)  # the network file EasyOCR loads

    model = network.Model(num_class=len(converter.character), **config["network_params"])
    if args.resume:
        state = torch.load(args.resume, map_location="cpu")
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    model.to(args.device)
    train = row_samples(args.seed, args.samples, img_h, args.workers)
    val = row_samples("reader-val", max(200, args.samples // 20), img_h, args.workers)
    held_out: dict[str, list] = {}  # real validation rows by set: all of them together choose the epoch
    if args.real:
        real_train, held_out["real"] = real_row_samples(args.real, img_h, args.real_variants, args.real_dir,
                                                        args.streamed)
        train += real_train
    if args.gate:
        gate_train, held_out["gate"] = gate_row_samples(img_h, args.gate, args.gate_dir)
        train += gate_train
    real_val = [row for rows in held_out.values() for row in rows]

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * len(batch_plan(train, args.batch, img_h, width, False, None))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    rng = random.Random(0)
    best = -1.0
    for epoch in range(args.epochs):
        t0, losses = time.time(), []
        for images, texts in batches(train, args.batch, img_h, width, True, rng):
            targets, lengths = converter.encode(texts)
            # time, batch, classes
            preds = model(images.to(args.device), None).log_softmax(2).permute(1, 0, 2)
            sizes = torch.IntTensor([preds.size(0)] * preds.size(1))
            loss = ctc(preds.float().cpu() if args.device != "cpu" else preds, targets, sizes, lengths)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        acc = evaluate(model, val, img_h, width, converter, args.device)
        line = f"epoch {epoch + 1}/{args.epochs} loss {np.mean(losses):.4f} val row accuracy {acc:.4f}"
        if real_val:  # the real rows decide: the synthetic ones are read almost perfectly already
            right = {name: evaluate(model, rows, img_h, width, converter, args.device) * len(rows)
                     for name, rows in held_out.items()}
            acc = sum(right.values()) / len(real_val)
            by_set = ", ".join(f"{name} {right[name] / max(1, len(rows)):.4f}"
                               for name, rows in held_out.items())
            line = f"{line} real val row accuracy {acc:.4f} ({by_set})"
        print(f"{line} ({time.time() - t0:.0f}s)", flush=True)
        if acc >= best:
            best = acc
            # EasyOCR strips a 7-character "module." prefix from every key when loading on CPU
            torch.save(OrderedDict(("module." + k, v) for k, v in model.state_dict().items()), out)
    print(f"wrote {out} ({'real ' if real_val else ''}val row accuracy {best:.4f})")


if __name__ == "__main__":
    main()
