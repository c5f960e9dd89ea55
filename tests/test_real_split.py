"""The real-photo split: fixed by file-name hashes, 15% of every group, never overlapping."""
from training.real_data import load, split


def test_split_is_stratified_fixed_and_disjoint(tmp_path):
    rows = ["file,text,group"]
    for group, count in (("car, white", 400), ("motorbike", 80), ("military, red", 20)):
        rows += [f'{group[:3]}_{i:04d}.jpg,51F-123.45,"{group}"' for i in range(count)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    photos = load(tmp_path)
    train, evaluation = split(photos)
    assert len(train) + len(evaluation) == 500
    assert not {p.path for p in train} & {p.path for p in evaluation}
    per_group = {
        g: sum(p.group == g for p in evaluation) for g in ("car, white", "motorbike", "military, red")
    }
    assert per_group == {"car, white": 60, "motorbike": 12, "military, red": 3}
    assert split(list(reversed(photos)))[1] == evaluation  # order of the csv does not matter
    assert evaluation[0].path.parent == tmp_path / "images"
