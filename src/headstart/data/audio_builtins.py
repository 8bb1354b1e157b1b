"""Audio data sets that install offline from Debian packages: ``builtin:drums``.

``builtin:drums`` is the real one-shot samples of the 14 drum kits in Debian's ``hydrogen-drumkits``
(``/usr/share/hydrogen/data/drumkits/<Kit>/drumkit.xml``), labelled by what each kit's author named the
instrument that plays the sample, in 8 classes:

===========  ====================================================================================
class        instrument names (lower-cased; the first rule of :data:`INSTRUMENT_CLASSES` that matches)
===========  ====================================================================================
kick         kick, bass drum (Kick, BassDrum, Pearl Kick, c3 - bass drum 1)
snare        snare, incl. rimshots and rolls (Snare Jazz, Snare Rimshot, Pearl Snare; Colombo's
             "redo super opaco", a snare by its file)
hi-hat       hi-hat, hat, HH, OHH: closed, open, pedal, semi-open, choke (Closed HH, Hi Hat Opened)
tom          tom (Tom Low, Floor Tom, Pearl Tom 2, tomhi2)
cymbal       crash, ride (incl. bell / cup), china, splash, cymbal (Black Pearl's "Paiste Bell" is its
             ride's bell)
clap         clap (Hand Clap, Clap Hard)
stick        side stick, rim click (Stick, Pearl Side Stick, Rim Click)
percussion   hand percussion: cowbell, agogo, conga, bongo, djembe, dununba, sangban, kenkeni, cajon,
             tambourine, maraca, clave, woodblock
===========  ====================================================================================

Left out (counted and logged on load, 119 samples): instruments outside these classes (finger snaps,
water glasses, whistle, click, zaps, FX, "Drum 1"), and the kits' unnamed slots (empty numbered slots,
rumpf's "Sample: FILE" and blank-named notes). Each sample file is used once (kits reuse a file for
several instruments of the same class; a file named for two classes would be left out), and a file the
XML names but the package lacks is skipped (Millo_MultiLayered2's cowbell).

Split by kit, so validation and test kits are never heard in training (a real domain shift: other
drums, rooms, microphones and synthesis). Fixed in :data:`KIT_SPLITS`, chosen so every class is in
every split: val = Audiophob, ElectricEmpireKit; test = ColomboAcousticDrumkit, The Black Pearl 1.0,
rumpf_kit_z01_h2; the other 9 kits (and any kit a later package adds) train. The kit of each sample is
``meta["kit"]``. With hydrogen-drumkits 0.9.x: 616 samples (train 422, val 42, test 152):

===========  =====  ===  ====  =====
class        train  val  test  total
===========  =====  ===  ====  =====
clap            12    3     2     17
cymbal          77    2    45    124
hi-hat          74   10    41    125
kick            29   13    12     54
percussion      94    3     6    103
snare           65    7    18     90
stick           17    1     7     25
tom             54    3    21     78
===========  =====  ===  ====  =====

Labels are the kit authors' names, with their quirks kept (Audiophob's "Kick" plays a file named
``tom-0105.wav`` and its "Pedal HH" a shaker); the samples are 44.1 and 48 kHz (one at 22.05 kHz),
mono and stereo, 16- and 24-bit, 0.02 to 12 seconds long.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np

from headstart.data.audio import AudioSet, UnreadableAudio, probe_audio
from headstart.data.builtin import register_builtin
from headstart.errors import HeadstartError

__all__ = ["DRUMKITS_DIR", "INSTRUMENT_CLASSES", "INSTRUMENT_EXCEPTIONS", "KIT_SPLITS", "drum_class"]

logger = logging.getLogger(__name__)

DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
INSTALL = "`sudo apt-get install hydrogen-drumkits` (or `make setup` as root)"

# Instrument name -> class: the first pattern (searched in the lower-cased name) that matches wins, so the
# order matters ("Snare Rimshot" is a snare, not a stick; "Crash/Ride Bell" a cymbal, not percussion).
# Written from the names in all 14 kits of hydrogen-drumkits; an instrument no rule matches is left out.
INSTRUMENT_CLASSES: tuple[tuple[str, str], ...] = (
    (r"\bkick|bass ?drum", "kick"),  # Kick, Kick Hard 1, BassDrum, Pearl Kick, c3 - bass drum 1
    (r"snare", "snare"),  # Snare Jazz / Rock / Roll / Dry, Snare Rimshot, Snare 2 (Pearl ...), Pearl Snare
    (r"\bo?hh\b|hi[- ]?hat|\bhat\b", "hi-hat"),  # Closed HH, Side OHH, Hi Hat Opened, Hi-Hat Pedal, Hat Op Dirty
    (r"\btom", "tom"),  # Tom Low, Floor Tom, tomhi2, Pearl Tom Floor, b3 - low tom ("Custom" is no tom)
    (r"crash|ride|china|splash|cymbal", "cymbal"),  # Crash Jazz, ride-cup, China, Zildjian Splash, cymbal 1
    (r"clap", "clap"),  # Hand Clap, Clap Hard, Clap 1, d#3 - clap
    (r"stick|rim click", "stick"),  # Stick, Pearl Side Stick, Rim Click (Pearl ...), c#3 - stick
    (
        r"cowbell|agogo|conga|bongo|djembe|dununba|sangban|kenkeni|cajon|tambourine|maraca|clave|woodblock",
        "percussion",  # hand percussion; cowbells alone (14 in 6 kits) are too few for a class of their own
    ),
)
INSTRUMENT_EXCEPTIONS = {  # names no rule can read, checked first
    "redo super opaco": "snare",  # ColomboAcousticDrumkit: its file is snare-opaque-2mics_normal-shot1.flac
    "paiste bell": "cymbal",  # The Black Pearl 1.0: the bell of its Paiste ride (beside "Paiste Ride")
}
KIT_SPLITS = {  # kit folder -> split; by kit, so val / test kits are unseen in training
    "Audiophob": "val",
    "ElectricEmpireKit": "val",
    "ColomboAcousticDrumkit": "test",
    "The Black Pearl 1.0": "test",
    "rumpf_kit_z01_h2": "test",
    "BJA_Pacific": "train",
    "ForzeeStereo": "train",
    "Gimme A Hand 1.0": "train",
    "HardElectro1": "train",
    "Millo-Drums_v.1": "train",
    "Millo_MultiLayered2": "train",
    "Millo_MultiLayered3": "train",
    "VariBreaks": "train",
    "circAfrique v4": "train",
}


def drum_class(instrument: str) -> str | None:
    """The class of a hydrogen instrument name, or None when it is left out.

    >>> drum_class("Hi-Hat Pedal (Paiste Alpha Metal edge 14\\")"), drum_class("Ride (Custom, Zagrebin 22\\")")
    ('hi-hat', 'cymbal')
    """
    name = instrument.strip().lower()
    if name in INSTRUMENT_EXCEPTIONS:
        return INSTRUMENT_EXCEPTIONS[name]
    return next((cls for pattern, cls in INSTRUMENT_CLASSES if re.search(pattern, name)), None)


def _local(tag: str) -> str:
    """An XML tag without its namespace (``{http://www.hydrogen-music.org/drumkit}name`` -> ``name``)."""
    return tag.rsplit("}", 1)[-1]


def _instruments(xml: Path) -> list[tuple[str, list[str]]]:
    """(instrument name, sample files) of a ``drumkit.xml``: files in ``<layer><filename>`` (any depth) or,
    in older kits, ``<filename>`` directly under ``<instrument>``."""
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise HeadstartError(f"builtin:drums cannot read {xml} ({exc}); reinstall it with {INSTALL}") from exc
    found = []
    for inst in root.iter():
        if _local(inst.tag) != "instrument":
            continue
        name = next(((c.text or "").strip() for c in inst if _local(c.tag) == "name"), "")
        files = [(e.text or "").strip() for e in inst.iter() if _local(e.tag) == "filename"]
        found.append((name, [f for f in files if f]))
    return found


def _kit_samples(kit: Path, left_out: Counter[str]) -> dict[Path, str]:
    """Sample file -> class for one kit, each file once; ``left_out`` counts what is not kept, by reason."""
    chosen: dict[Path, str] = {}
    ambiguous: set[Path] = set()
    for name, files in _instruments(kit / "drumkit.xml"):
        cls = drum_class(name)
        if cls is None:
            left_out["unmapped instrument"] += len(files)
            continue
        for file in files:
            path = kit / file
            if not path.is_file():
                left_out["missing file"] += 1
            elif chosen.get(path, cls) != cls:
                ambiguous.add(path)
            else:
                chosen[path] = cls
    for path in ambiguous:
        del chosen[path]
        left_out["file named for two classes"] += 1
    return chosen


@register_builtin("drums", "audio")
def _drums() -> AudioSet:
    """One-shot drum samples of the hydrogen kits in 8 classes, split by kit (see the module docstring)."""
    kits = sorted(p for p in DRUMKITS_DIR.glob("*") if (p / "drumkit.xml").is_file()) if DRUMKITS_DIR.is_dir() else []
    if not kits:
        raise HeadstartError(
            f"builtin:drums reads the drum kits in {DRUMKITS_DIR}, which are missing; install {INSTALL}"
        )
    left_out: Counter[str] = Counter()
    ids, paths, classes, rates, kit_of, skipped = [], [], [], [], [], []
    for kit in kits:
        for path, cls in sorted(_kit_samples(kit, left_out).items()):
            try:
                rate, _ = probe_audio(path)
            except UnreadableAudio as exc:
                skipped.append(str(exc))
                continue
            ids.append(f"builtin:drums/{kit.name}/{path.relative_to(kit).as_posix()}")
            paths.append(path)
            classes.append(cls)
            rates.append(rate)
            kit_of.append(kit.name)
    new = sorted({k for k in kit_of if k not in KIT_SPLITS})
    if new:
        logger.info("builtin:drums: kit(s) %s are not in KIT_SPLITS and train", ", ".join(new))
    logger.info("builtin:drums: %d samples of %d kits; left out: %s", len(ids), len(kits), dict(left_out))
    labels = sorted(set(classes))
    return AudioSet(
        source="builtin:drums",
        ids=ids,
        targets=np.asarray([labels.index(c) for c in classes], dtype=np.int64),
        labels=labels,
        paths=paths,
        rates=np.asarray(rates, dtype=np.int64),
        given_split=np.asarray([KIT_SPLITS.get(k, "train") for k in kit_of]),
        meta={"kit": np.asarray(kit_of)},
        skipped=skipped,
        layout="builtin",
    )
