"""Class names of each dataset, in the index order of the models' outputs.

Kept apart from the list parsers and the synthetic generator so that code which only needs
class indices (the Dataset, evaluation) does not depend on either.
"""

from __future__ import annotations

# Class index order of the paper's code.
CLASSES: dict[str, tuple[str, ...]] = {
    "music": (
        "flute", "acoustic_guitar", "accordion", "xylophone", "erhu", "tuba", "saxophone",
        "cello", "violin", "clarinet", "trumpet",
    ),
    "ave": (
        "Church_bell", "Male_speech", "Bark", "airplane", "Race_car", "Female_speech",
        "Helicopter", "Violin", "Flute", "Ukulele", "Frying", "Truck", "Shofar", "Motorcycle",
        "Chainsaw", "Acoustic_guitar", "Train_horn", "Clock", "Banjo", "Goat", "Baby_cry", "Bus",
        "Cat", "Horse", "Toilet_flush", "Rodents", "Accordion", "Mandolin",
    ),
    "kinetics_sounds": (
        "laughing", "playing_clarinet", "singing", "playing_harmonica", "playing_keyboard",
        "playing_xylophone", "playing_bass_guitar", "tapping_guitar", "playing_drums",
        "playing_piano", "ripping_paper", "playing_saxophone", "tickling", "playing_trumpet",
        "tapping_pen", "playing_organ", "tap_dancing", "playing_accordion", "blowing_nose",
        "shuffling_cards", "playing_guitar", "playing_trombone", "playing_bagpipes",
        "shoveling_snow", "bowling", "playing_violin", "chopping_wood",
    ),
}  # fmt: skip

SYNTHETIC_DATASET = "synthetic_music"  # the embedded dataset (avmodels.data.synthetic)
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "accordion",
    "bagpipe",
    "banjo",
    "cello",
    "clarinet",
    "flute",
    "harp",
    "marimba",
    "sitar",
    "trumpet",
    "tuba",
)


def class_names(dataset: str) -> tuple[str, ...]:
    """Class names in index order: ``CLASSES``, or the synthetic dataset's own classes."""
    if dataset in CLASSES:
        return CLASSES[dataset]
    if dataset == SYNTHETIC_DATASET:
        return SYNTHETIC_CLASSES
    raise ValueError(f"unknown dataset {dataset!r}; known: {[*CLASSES, SYNTHETIC_DATASET]}")


def num_classes(dataset: str) -> int:
    """Number of classes of ``dataset``."""
    return len(class_names(dataset))


def label_index(dataset: str, label: str) -> int:
    """Index of ``label`` in :func:`class_names` (for the real datasets, the paper's code order)."""
    names = class_names(dataset)
    if label not in names:
        raise ValueError(f"{label!r} is not a {dataset} class")
    return names.index(label)
