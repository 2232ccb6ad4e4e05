"""Dataset lists, clip records and manifests; the Dataset reading preprocessed clips.

The list parsing lives in :mod:`avmodels.lists` and is re-exported here.
"""

from __future__ import annotations

from avmodels.classes import CLASSES, class_names, label_index, num_classes
from avmodels.lists import (
    EXCLUSION_COLUMNS,
    LIST_SOURCES,
    SPLITS,
    ClipRecord,
    Exclusion,
    ListChecksumError,
    ListFormatError,
    fetch_list,
    read_exclusions,
    read_records,
    records_with_exclusions,
    sha256_file,
    verify_sha256,
    write_exclusions,
    write_records,
)
from avmodels.manifests import MANIFEST_COLUMNS, merge_manifests

__all__ = [
    "CLASSES",
    "EXCLUSION_COLUMNS",
    "LIST_SOURCES",
    "MANIFEST_COLUMNS",
    "SPLITS",
    "ClipRecord",
    "Exclusion",
    "ListChecksumError",
    "ListFormatError",
    "class_names",
    "fetch_list",
    "label_index",
    "num_classes",
    "read_exclusions",
    "read_records",
    "records_with_exclusions",
    "sha256_file",
    "merge_manifests",
    "verify_sha256",
    "write_exclusions",
    "write_records",
]
