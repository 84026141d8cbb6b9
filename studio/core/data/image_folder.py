"""torchvision's ImageFolder layout: one subfolder per class, its images inside.

``root/cat/001.png, root/dog/xyz.jpg`` -> classes ``["cat", "dog"]`` (sorted, as
torchvision numbers them) and each image's class index in ``meta["labels"]``. Images in
the root itself belong to no class and are left out (torchvision ignores them too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..registry import DATASETS
from .arrays import CancelledFn, ProgressFn, check_channels, check_limit, check_resolution, images_dataset
from .base import Dataset
from .images import _existing, image_files, read_images


def class_folders(root: Path) -> list[Path]:
    """The class subfolders that hold at least one image, sorted by name."""
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".") and image_files(d)]


@DATASETS.register("imagefolder", kind="images", needs_path=True,
                   description="an ImageFolder: one subfolder per class (torchvision layout)")
def load_image_folder(
    path: str | Path | None = None,
    resolution: int = 32,
    channels: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> Dataset:
    """PNG / JPEG images of the class subfolders of ``path``, center-cropped and resized
    to ``resolution``; ``limit`` takes the first images in class order. Unreadable files
    are skipped and named (``meta["skipped"]``), as in the ``folder`` source."""
    root = _existing(path, "imagefolder")
    if not root.is_dir():
        raise DataError(f"imagefolder source path is not a folder: {root}")
    resolution = check_resolution(resolution) or 32
    channels, limit = check_channels(channels), check_limit(limit)
    classes = class_folders(root)
    if not classes:
        raise DataError(f"imagefolder {root} has no class subfolders with PNG or JPEG files "
                        "(expected root/<class>/<image>; for a flat folder use source 'folder')")
    files, class_of = [], {}
    for index, folder in enumerate(classes):
        for f in image_files(folder):
            files.append(f)
            class_of[str(f.relative_to(root))] = index
    x, names, skipped, levels = read_images(root, files, resolution, channels, limit, progress, cancelled)
    meta = {"source": "imagefolder", "path": str(root), "classes": [d.name for d in classes], "files": names,
            "labels": np.array([class_of[n] for n in names], dtype=np.int64), "skipped": skipped, "levels": levels}
    return images_dataset(x, root.name or "imagefolder", meta)
