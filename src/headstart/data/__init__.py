"""Data: image and text sources (folders, CSV/TSV/JSONL, builtins), splits, recipe-driven loaders."""

from headstart.data.dataset import Dataset, load_data
from headstart.data.images import ImageSet, UnreadableImage, read_image
from headstart.data.loader import Batch, ImageDataset, SkipLog, make_loader
from headstart.data.sources import load_images
from headstart.data.splits import limit_per_class, make_splits, splits_from_json, splits_to_json, stratified_split
from headstart.data.text_sources import is_text_source, load_texts
from headstart.data.texts import TextSet
from headstart.data.transforms import eval_transform, train_transform

__all__ = [
    "Batch",
    "Dataset",
    "TextSet",
    "is_text_source",
    "load_data",
    "load_texts",
    "ImageDataset",
    "ImageSet",
    "SkipLog",
    "UnreadableImage",
    "eval_transform",
    "limit_per_class",
    "load_images",
    "make_loader",
    "make_splits",
    "read_image",
    "splits_from_json",
    "splits_to_json",
    "stratified_split",
    "train_transform",
]
