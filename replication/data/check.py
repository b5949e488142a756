"""`python -m replication data check PATH`: every bad-input check, on a folder, as a report.

PATH may be an unpaired dataset (trainA/ trainB/ testA/ testB/), a paired
pix2pix dataset (train/ and test/ or val/, side-by-side images) or a plain
folder of images (for `translate`). Problems (exit status 1): missing or
empty splits, files with an image extension that do not decode, images too
small for the network (or for `--crop-size` with preprocess 'crop'),
test photos without their counterpart (`*_truth/`), folder links that lead
back to a folder already read (a loop). Notes: counts, sizes, the files that
are ignored, and the images that will be converted to 8-bit RGB.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from replication.data import layouts
from replication.data.images import EXTENSIONS_TEXT, list_images, scan
from replication.errors import DataError
from replication.files import readable


@dataclass
class Report:
    path: Path
    layout: str = ""
    lines: list = field(default_factory=list)  # one per split
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        out = [f"data check {self.path}", f"layout: {self.layout}"]
        out += [f"  {line}" for line in self.lines]
        if self.notes:
            out.append("notes:")
            out += [f"  - {n}" for n in self.notes]
        if self.problems:
            out.append(f"PROBLEMS ({len(self.problems)}):")
            out += [f"  - {p}" for p in self.problems]
        else:
            out.append("no problems found")
        return readable("\n".join(out))


def _few(items, limit=8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _report_too_small(report: Report, label: str, sizes, too_small, problem: str) -> None:
    """One problem naming the images (name, h, w) for which `too_small(h, w)`, if any; `problem` may say {count}."""
    found = [f"{n} ({w}x{h})" for n, h, w in sizes if too_small(h, w)]
    if found:
        report.problems.append(f"{label}: {problem.format(count=len(found))}: {_few(found)}")


def _check_split(report: Report, folder: Path, label: str, crop_size, multiple: int, side_by_side=False):
    listing = list_images(folder)
    names = listing.images
    if listing.ignored:
        report.notes.append(f"{label}: {len(listing.ignored)} non-image file(s) ignored: {_few(listing.ignored)}")
    if listing.repeated:
        report.problems.append(
            f"{label}: {len(listing.repeated)} folder link(s) lead to a folder already read or one that holds it (a loop, or a second "
            f"way to the same images); each folder is read once, so remove them: {_few(listing.repeated)}"
        )
    if not names:
        report.problems.append(f"{folder} holds no images ({EXTENSIONS_TEXT}).")
        report.lines.append(f"{label + '/':14s} 0 images")
        return []
    results = scan([folder / n for n in names])
    bad = [f"{n} ({r.error[:100]})" for n, r in zip(names, results) if r.error]
    modes = Counter(r.mode for r in results if not r.error)
    sizes = [(n, *r.size) for n, r in zip(names, results) if not r.error]
    if bad:
        report.problems.append(
            f"{label}: {len(bad)} file(s) with an image extension cannot be decoded (training stops unless "
            f"data.skip_bad_images: true): {_few(bad)}"
        )
    converted = {m: c for m, c in modes.items() if m != "RGB"}
    if converted:
        report.notes.append(
            f"{label}: converted to 8-bit RGB when read: " + ", ".join(f"{c} {m}" for m, c in sorted(converted.items()))
        )
    if side_by_side:
        _report_too_small(report, label, sizes, lambda h, w: w < 2 * multiple, "too narrow to hold A and B side by side")
        sizes = [(n, h, w // 2) for n, h, w in sizes]
    _report_too_small(
        report, label, sizes, lambda h, w: h < multiple or w < multiple,
        f"{{count}} image(s) have a side under {multiple} px, which the network cannot take (sides must be at least {multiple})",
    )
    if crop_size:
        _report_too_small(
            report, label, sizes, lambda h, w: h < crop_size or w < crop_size,
            f"{{count}} image(s) smaller than crop {crop_size}x{crop_size}, which preprocess "
            "'crop' needs (use resize_and_crop or a smaller crop_size)",
        )
    if sizes:
        hs = [h for _, h, _ in sizes]
        ws = [w for _, _, w in sizes]
        size_text = f"{ws[0]}x{hs[0]}" if len(set(hs)) == 1 and len(set(ws)) == 1 else (
            f"{min(ws)}x{min(hs)} .. {max(ws)}x{max(hs)}")
        what = " (each half)" if side_by_side else ""
        broken = f", {len(bad)} cannot be decoded" if bad else ""
        report.lines.append(f"{label + '/':14s} {len(sizes):6d} images, size {size_text}{what}{broken}")
    return names


def checked_folder(path) -> Path:
    """The folder `data check` reads; a missing one is refused before any image is decoded."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist. Expected layout: {layouts.UNPAIRED_LAYOUT}.")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder. Expected layout: {layouts.UNPAIRED_LAYOUT}.")
    return path


def check(path, crop_size: int | None = None, multiple: int = 4) -> Report:
    """Run every data check on `path`; the report lists problems instead of raising (except for a missing path)."""
    path = checked_folder(path)
    report = Report(path)
    present = {s for s in layouts.UNPAIRED_SPLITS if (path / s).is_dir()}
    if present:
        report.layout = "unpaired (CycleGAN): trainA/ trainB/ testA/ testB/"
        listed = {}
        for s in layouts.UNPAIRED_SPLITS:
            if s not in present:
                report.problems.append(
                    f"{path / s} is missing. Expected layout: {layouts.UNPAIRED_LAYOUT.replace('ROOT', str(path))}."
                )
                continue
            listed[s] = _check_split(report, path / s, s, crop_size, multiple)
        for truth in sorted(p for p in path.iterdir() if p.is_dir() and p.name.endswith("_truth")):
            split = truth.name[: -len("_truth")]
            names = _check_split(report, truth, truth.name, crop_size, multiple)
            if split in listed and sorted(names) != sorted(listed[split]):
                missing = sorted(set(listed[split]) - set(names))
                report.problems.append(
                    f"{truth.name}: ground truth should hold one image per {split}/ image under the same name; "
                    f"missing: {_few(missing) or '-'}; extra: {_few(sorted(set(names) - set(listed[split]))) or '-'}"
                )
    elif (path / "train").is_dir() or (path / "test").is_dir() or (path / "val").is_dir():
        report.layout = "paired (pix2pix): train/ and test/ or val/, A and B side by side"
        if not (path / "train").is_dir():
            report.problems.append(f"{path / 'train'} is missing. Expected layout: {layouts.PAIRED_LAYOUT.replace('ROOT', str(path))}.")
        if not ((path / "test").is_dir() or (path / "val").is_dir()):
            report.problems.append(f"{path} has neither test/ nor val/. Expected layout: {layouts.PAIRED_LAYOUT.replace('ROOT', str(path))}.")
        for s in ("train", "val", "test"):
            if (path / s).is_dir():
                _check_split(report, path / s, s, crop_size, multiple, side_by_side=True)
    elif list_images(path).images:
        report.layout = "a plain folder of images (for translate)"
        _check_split(report, path, ".", crop_size, multiple)
    else:
        report.layout = "not recognised"
        report.problems.append(
            f"{path} holds no images and none of trainA/ trainB/ testA/ testB/ (or train/ test/). "
            f"Expected layout: {layouts.UNPAIRED_LAYOUT.replace('ROOT', str(path))}; or, for pix2pix, {layouts.PAIRED_LAYOUT}."
        )
    if crop_size is None:
        report.notes.append("give --crop-size N to also check the sizes preprocess 'crop' needs")
    return report
