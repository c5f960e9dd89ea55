"""Train the EasyOCR custom recogniser `vn_plate` on synthetic plate rows, offline.

    python -m training.train_reader --samples 40000 --epochs 6

Each sample is a rendered plate cut as a detector box would cut it, split into rows by
the same detector.rows.split_rows the reader uses, then prepared by EasyOCR's own
get_image_list/AlignCollate, so training sees exactly what inference sees.
Writes models/vn_plate.pth next to models/vn_plate.py and models/vn_plate.yaml.
"""
from __future__ import annotations

import argparse
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

from detector.plate_format import alnum
from detector.rows import split_rows
from training.synth import plate_sample

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def row_samples(seed: str, count: int, img_h: int) -> list[tuple[np.ndarray, str]]:
    """(EasyOCR-resized grey row, label) pairs from `count` plates."""
    out, skipped = [], 0
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        crop, spec = plate_sample(rng)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        rows = split_rows(grey)
        if len(rows) != len(spec.rows):  # the split failed: its label would be wrong
            skipped += 1
            continue
        boxes = [[0, grey.shape[1], y0, y1] for y0, y1 in rows]
        for (_, img), text in zip(get_image_list(boxes, [], grey, model_height=img_h)[0], spec.rows):
            out.append((img, alnum(text)))
    print(f"{seed}: {len(out)} rows from {count} plates ({skipped} with a wrong row split skipped)")
    return out


def batches(samples, batch_size, collate, shuffle, rng):
    order = list(range(len(samples)))
    if shuffle:
        rng.shuffle(order)
    from PIL import Image

    for start in range(0, len(order), batch_size):
        chunk = [samples[i] for i in order[start:start + batch_size]]
        images = collate([Image.fromarray(img, "L") for img, _ in chunk])
        texts = [t for _, t in chunk]
        yield images, texts


def evaluate(model, samples, collate, converter) -> float:
    model.eval()
    right = 0
    with torch.no_grad():
        for images, texts in batches(samples, 256, collate, False, None):
            preds = model(images).log_softmax(2)
            idx = preds.argmax(2)
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
    ap.add_argument("--out", type=Path, default=MODELS / "vn_plate.pth")
    ap.add_argument("--resume", type=Path, help="start from these weights (an earlier vn_plate.pth) instead of scratch")
    ap.add_argument("--seed", default="reader-train", help="seed of the training plates (a new one adds fresh data)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    config = yaml.safe_load((MODELS / "vn_plate.yaml").read_text())
    img_h, width = config["imgH"], config["imgH"] * 6
    converter = CTCLabelConverter(config["character_list"], {}, {})
    import sys

    sys.path.insert(0, str(MODELS))
    from vn_plate import Model  # the network file EasyOCR loads

    model = Model(num_class=len(converter.character), **config["network_params"])
    if args.resume:
        state = torch.load(args.resume, map_location="cpu")
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    collate = AlignCollate(imgH=img_h, imgW=width, keep_ratio_with_pad=True)
    train = row_samples(args.seed, args.samples, img_h)
    val = row_samples("reader-val", max(200, args.samples // 20), img_h)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * ((len(train) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    rng = random.Random(0)
    best = -1.0
    for epoch in range(args.epochs):
        t0, losses = time.time(), []
        for images, texts in batches(train, args.batch, collate, True, rng):
            targets, lengths = converter.encode(texts)
            preds = model(images).log_softmax(2).permute(1, 0, 2)  # time, batch, classes
            sizes = torch.IntTensor([preds.size(0)] * preds.size(1))
            loss = ctc(preds, targets, sizes, lengths)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        acc = evaluate(model, val, collate, converter)
        print(f"epoch {epoch + 1}/{args.epochs} loss {np.mean(losses):.4f} val row accuracy {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if acc >= best:
            best = acc
            # EasyOCR strips a 7-character "module." prefix from every key when loading on CPU
            torch.save(OrderedDict(("module." + k, v) for k, v in model.state_dict().items()), args.out)
    print(f"wrote {args.out} (val row accuracy {best:.4f})")


if __name__ == "__main__":
    main()
