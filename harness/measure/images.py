"""Real photographs as model inputs: the calibration set a post-training quantizer sees, and the held-out
images every run's agreement with fp32 PyTorch is measured on.

Without `--calibration DIR` both come from photographs installed packages ship (scikit-image's
`skimage.data`, matplotlib's sample data), never random noise: an int8 quantizer calibrated on noise
picks activation ranges no photograph produces. The two sets share no photograph. Every image is
preprocessed as the ImageNet models here expect (shorter side resized, centre crop, ImageNet mean and
std), and each set has an identity (a hash of its files and of the preprocessing) that goes into the
cache key of every artifact calibrated on it.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

PREPROCESSING = "resize-shorter-bicubic/crop_pct-0.875/imagenet-mean-std/v1"  # part of every set's identity
CROP_PCT = 0.875
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Photographs (not drawings, charts or synthetic patterns), by (package, file). Calibration gets four
# views of each (centre, two corners, mirrored centre); the held-out set one centre view of each.
CALIBRATION_PHOTOS = (("skimage", "astronaut.png"), ("skimage", "camera.png"), ("skimage", "brick.png"),
                      ("skimage", "grass.png"), ("skimage", "gravel.png"), ("skimage", "hubble_deep_field.jpg"),
                      ("skimage", "motorcycle_left.png"), ("skimage", "retina.jpg"), ("skimage", "cell.png"),
                      ("skimage", "clock_motion.png"), ("skimage", "page.png"))
HELD_OUT_PHOTOS = (("skimage", "chelsea.png"), ("skimage", "coffee.png"), ("skimage", "rocket.jpg"),
                   ("matplotlib", "grace_hopper.jpg"), ("skimage", "ihc.png"), ("skimage", "coins.png"),
                   ("skimage", "moon.png"), ("skimage", "motorcycle_right.png"))
INSTALL_SKIMAGE = "pip install scikit-image (its skimage.data ships the photographs)"


class ImageSetError(ValueError):
    """No usable images: the message says where they were looked for and what to do."""


@dataclass(frozen=True)
class ImageSet:
    """Preprocessed images, float32 NCHW (N, 3, R, R), and what they are."""
    images: np.ndarray
    identity: str  # sha256 of the source files and the preprocessing
    source: str  # a folder, or "bundled photographs"
    names: tuple[str, ...]

    def batches(self, batch: int) -> list[np.ndarray]:
        """The images in model batches of `batch` (the last one filled up from the start of the set)."""
        count = -(-len(self.images) // batch)
        order = np.arange(count * batch) % len(self.images)
        return [self.images[order[i * batch:(i + 1) * batch]] for i in range(count)]


def package_dir(package: str) -> Path | None:
    """Where an installed package keeps its sample images; None when it is not installed."""
    try:
        if package == "skimage":
            import skimage
            return Path(skimage.__file__).parent / "data"
        import matplotlib
        return Path(matplotlib.get_data_path()) / "sample_data"
    except ImportError:
        return None


def _bundled(photos: tuple) -> list[Path]:
    found, missing = [], []
    for package, name in photos:
        folder = package_dir(package)
        path = folder / name if folder else None
        (found if path is not None and path.is_file() else missing).append(path or f"{package}:{name}")
    if missing and not found:
        raise ImageSetError(f"no bundled photographs found ({', '.join(map(str, missing[:3]))} ...): "
                            f"{INSTALL_SKIMAGE}, or pass --calibration DIR")
    return found


def _views(image, resolution: int, augment: bool) -> list:
    """PIL crops of `resolution`: the centre view; with `augment` also two corner crops and the mirrored centre."""
    from PIL import Image, ImageOps

    image = image.convert("RGB")
    short = round(resolution / CROP_PCT)
    width, height = image.size
    scale = short / min(width, height)
    image = image.resize((max(short, round(width * scale)), max(short, round(height * scale))), Image.BICUBIC)
    width, height = image.size
    left, top = (width - resolution) // 2, (height - resolution) // 2
    centre = image.crop((left, top, left + resolution, top + resolution))
    if not augment:
        return [centre]
    return [centre, image.crop((0, 0, resolution, resolution)),
            image.crop((width - resolution, height - resolution, width, height)), ImageOps.mirror(centre)]


def _array(view) -> np.ndarray:
    pixels = np.asarray(view, dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)


def load_images(paths: list[Path], resolution: int, augment: bool, source: str, root: Path | None = None) -> ImageSet:
    """Read and preprocess `paths`; an unreadable file is an ImageSetError naming it."""
    from PIL import Image, UnidentifiedImageError

    digest = hashlib.sha256(f"{PREPROCESSING}/augment={augment}".encode())
    arrays, names = [], []
    for path in paths:
        data = path.read_bytes()
        name = str(path.relative_to(root)) if root else path.name
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        try:
            with Image.open(path) as image:
                arrays += [_array(view) for view in _views(image, resolution, augment)]
        except (UnidentifiedImageError, OSError) as exc:
            raise ImageSetError(f"{path} is not an image this harness can read ({exc})") from None
        names.append(name)
    return ImageSet(np.stack(arrays), "sha256:" + digest.hexdigest()[:16], source, tuple(names))


def calibration_set(resolution: int, folder: str | Path | None = None) -> ImageSet:
    """The images a quantizer calibrates on: every image in `folder` (searched recursively), or the
    bundled calibration photographs in four views each."""
    if folder is None:
        return _bundled_copy(CALIBRATION_PHOTOS, resolution, augment=True)
    root = Path(folder)
    if not root.is_dir():
        raise ImageSetError(f"--calibration {folder}: not a folder")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ImageSetError(f"--calibration {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    return load_images(paths, resolution, augment=False, source=str(root.resolve()), root=root)


def held_out_set(resolution: int) -> ImageSet:
    """The photographs agreement is measured on (none of them in the bundled calibration set)."""
    return _bundled_copy(HELD_OUT_PHOTOS, resolution, augment=False)


def _bundled_copy(photos: tuple, resolution: int, augment: bool) -> ImageSet:
    """The bundled photographs, decoded once per process (a kept worker times every model of a sweep on them);
    each caller gets its own writable array."""
    found = _bundled_set(photos, resolution, augment)
    return replace(found, images=found.images.copy())


@functools.lru_cache(maxsize=8)
def _bundled_set(photos: tuple, resolution: int, augment: bool) -> ImageSet:
    return load_images(_bundled(photos), resolution, augment, source="bundled photographs")


def labelled_set(folder: str | Path, resolution: int) -> tuple[ImageSet, np.ndarray]:
    """`--eval DIR`: an ImageFolder layout (one sub-folder per class, named so that sorted they are in the
    model's class order, as ImageNet's synset folders are), as (images, class index per image)."""
    root = Path(folder)
    classes = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise ImageSetError(f"--eval {folder}: expected one sub-folder of images per class (ImageFolder layout)")
    paths, labels = [], []
    for index, cls in enumerate(classes):
        found = sorted(p for p in cls.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        paths += found
        labels += [index] * len(found)
    if not paths:
        raise ImageSetError(f"--eval {folder}: its class folders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    return (load_images(paths, resolution, augment=False, source=str(root.resolve()), root=root),
            np.array(labels))
