"""Phone timings from speech, with pocketsphinx's English model.

`align_phones` force-aligns a known transcript: on clean speech, phone starts
come within 10-15 ms of the true ones on average. `recognize_phones` guesses
phones with no transcript (a phone-bigram model: about half the phones are
wrong, but it tells speech from silence and mostly vowels from closures).
Both take float32 samples [N] mono at SAMPLE_RATE in [-1, 1] and return
`Phone`s that cover the audio from 0 to its end without gaps, times in seconds.
Both run at about 0.04-0.06x real time on one CPU core, at any length.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkhead.errors import InputError, TranscriptError

SAMPLE_RATE = 16_000   # Hz, what the acoustic model was trained on
FRAME_RATE = 100       # pocketsphinx feature frames per second (-frate)
_HOP = SAMPLE_RATE // FRAME_RATE  # samples per frame
# Longest stretch aligned phone by phone in one go (seconds). That pass keeps a
# table of every state of the sentence for every frame, so its memory grows with
# the square of the length: 0.2 GB for 1 min, 1.4 GB for 4 min in one go.
MAX_CHUNK = 20.0
SILENCE = "SIL"
# The model never heard digital silence: exact zeros (synthetic, gated or padded
# audio) make it stretch neighbouring phones into pauses and misplace closures by
# up to half a second. A fixed-seed white-noise floor this far below the loud
# speech frames (never under MIN_NOISE, about -70 dBFS) avoids that.
NOISE_FLOOR_DB = -45.0
MIN_NOISE = 3e-4
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
# Search without pruning: the grammar of one transcript is small, so this costs
# about 10% more time, and pruning (pocketsphinx's default beams) lost the only
# path through the grammar for some correct sentences.
_ALIGN_SEARCH = {"beam": 1e-200, "wbeam": 1e-200, "pbeam": 1e-200, "maxhmmpf": -1, "maxwpf": -1}
# Lowest mean acoustic score per speech frame (pocketsphinx units, about 0.1 nat
# below the best state of each frame) of an alignment we trust. Measured: correct
# transcripts of real speech -10 to -15, of espeak voices -15 to -42; wrong
# transcripts -41 to -97, mostly below -50.
MIN_FIT_SCORE = -45.0
# Weight of the phone bigram against the acoustics; pocketsphinx's default (6.5)
# gave 56% phone errors on five LibriVox sentences, 3.0 gives 48%.
_PHONE_LM_WEIGHT = 3.0
_FIT_HINT = "check that the transcript is the text spoken in the audio, or leave it out to guess phones from the audio alone"


@dataclass(frozen=True)
class Phone:
    """One phone: ARPAbet label without stress (or "SIL"), start and end in seconds."""

    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


def align_phones(samples: np.ndarray, text: str) -> list[Phone]:
    """Force-align `text` with speech: samples float32 [N] mono 16 kHz in [-1,1] → phones covering [0, N/16000] s.

    Words missing from the dictionary get a rough letter-to-sound pronunciation.
    Audio longer than MAX_CHUNK seconds is aligned word by word first, then cut
    at pauses into chunks whose phones are aligned one by one.
    Raises TranscriptError when the text does not fit the audio.
    """
    pcm = pcm16(samples)
    words = normalize_text(text)
    if not words:
        raise TranscriptError(f"The transcript {text!r} has no words to align; {_FIT_HINT}.")
    n_frames = len(samples) // _HOP
    if n_frames <= MAX_CHUNK * FRAME_RATE:
        chunks = [(0, n_frames, words)]
    else:
        chunks = _chunks(_word_segments(pcm, words), words, n_frames)
    entries = []
    for start, end, chunk_words in chunks:
        if chunk_words:
            chunk = _align_chunk(pcm[start * _HOP * 2 : end * _HOP * 2], chunk_words)
            entries += [(name, first + start, count, score) for name, first, count, score in chunk]
    speech = [e for e in entries if e[0] in ARPABET]
    fit = sum(e[3] for e in speech) / max(1, sum(e[2] for e in speech))
    if fit < MIN_FIT_SCORE:
        raise TranscriptError(f"The transcript does not match the speech (fit {fit:.0f} < {MIN_FIT_SCORE:.0f}); {_FIT_HINT}.")
    return _cover(_phones([e[:3] for e in entries]), len(samples) / SAMPLE_RATE)


def aligner():
    """This thread's decoder for forced alignment (no language model: loading one took 0.3 s of its 0.46)."""
    return kept_decoder("align", lm=None, **_ALIGN_SEARCH)


def _aligner(words: Sequence[str]):
    """A decoder set up to align `words` (a word-level pass must run before set_alignment)."""
    decoder = aligner()
    _add_missing_words(decoder, words)
    decoder.set_align_text(" ".join(words))
    return decoder


def _word_segments(pcm: bytes, words: Sequence[str]) -> list[tuple[bool, int, int]]:
    """Word-level alignment of the whole audio → (is a word, first frame, end frame) per segment."""
    decoder = _aligner(words)
    decode_utterance(decoder, pcm)
    if decoder.hyp() is None:
        raise TranscriptError(f"The transcript does not fit the audio (too long for it, or no speech); {_FIT_HINT}.")
    return [(s.word[0] not in "<[", s.start_frame, s.end_frame + 1) for s in decoder.seg()]


def _chunks(segments, words: Sequence[str], n_frames: int) -> list[tuple[int, int, Sequence[str]]]:
    """Cut word segments into (first frame, end frame, words) chunks of at most about MAX_CHUNK s.

    Cuts go in the middle of the last pause before the limit, or between two words
    when the last MAX_CHUNK / 2 seconds hold no pause.
    """
    limit = int(MAX_CHUNK * FRAME_RATE)
    chunks, start, first_word, n_words = [], 0, 0, 0
    pause = boundary = None  # where a cut may go: (frame, words before it)
    for is_word, first, end in segments:
        if not is_word:
            pause = (min((first + end) // 2, max(first, start + limit)), n_words)
        if end - start > limit and (pause or boundary):
            cut = pause if pause and (pause[0] > start + limit // 2 or not boundary) else boundary
            chunks.append((start, cut[0], words[first_word : cut[1]]))
            start, first_word, pause, boundary = cut[0], cut[1], None, None
        if is_word:
            n_words += 1
            boundary = (end, n_words)
    chunks.append((start, n_frames, words[first_word:]))
    return chunks


def _align_chunk(pcm: bytes, words: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """Phone alignment of one stretch → (pocketsphinx phone, first frame, frame count, acoustic score)."""
    decoder = _aligner(words)
    decode_utterance(decoder, pcm)                      # pass 1: word boundaries
    if decoder.hyp() is None:
        raise TranscriptError(f"The transcript does not fit the audio (too long for it, or no speech); {_FIT_HINT}.")
    decoder.set_alignment()
    decode_utterance(decoder, pcm)                      # pass 2: phone and state boundaries
    return [(p.name, p.start, p.duration, p.score) for p in decoder.get_alignment().phones()]


def recognize_phones(samples: np.ndarray) -> list[Phone]:
    """Recognise phones with no transcript: samples float32 [N] mono 16 kHz in [-1,1] → phones covering the audio."""
    from pocketsphinx import get_model_path

    pcm = pcm16(samples)
    decoder = kept_decoder("phones", lm=None, allphone=get_model_path("en-us/en-us-phone.lm.bin"), lw=_PHONE_LM_WEIGHT)
    decode_utterance(decoder, pcm)
    entries = [(s.word, s.start_frame, s.end_frame + 1 - s.start_frame) for s in decoder.seg() or []]
    return _cover(_phones(entries), len(samples) / SAMPLE_RATE)


def _decoder(**config):
    """A quiet pocketsphinx Decoder for 16 kHz audio; bestpath off unless `config` turns it on (it does not
    help alignment)."""
    from pocketsphinx import Decoder

    return Decoder(**{"samprate": SAMPLE_RATE, "bestpath": False, "loglevel": "FATAL", **config})


_KEPT = threading.local()


def kept_decoder(name: str, **config):
    """This thread's decoder called `name`, made with `config` on first use and kept (loading the model
    takes about 0.4 s), handed out as new: its feature extraction (noise and cepstral-mean estimates, which
    each utterance updates) starts over, so results do not depend on what it decoded before."""
    kept = getattr(_KEPT, "decoders", None)
    if kept is None:
        kept = _KEPT.decoders = {}
    if name not in kept:
        kept[name] = _decoder(**config)
    else:
        kept[name].reinit_feat()
    return kept[name]


def decode_utterance(decoder, pcm: bytes) -> None:
    """Run one whole utterance through the decoder's active search."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def pcm16(samples: np.ndarray) -> bytes:
    """float [N] in [-1,1] → 16-bit little-endian PCM bytes, with a faint noise floor (see NOISE_FLOOR_DB)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise InputError(f"Speech must be non-empty mono samples [N], got shape {samples.shape}; mix it down to one channel.")
    frames = samples[: samples.size // _HOP * _HOP].reshape(-1, _HOP)
    loud = np.percentile(np.sqrt((frames**2).mean(axis=1)), 95) if len(frames) else 0.0
    level = max(float(loud) * 10 ** (NOISE_FLOOR_DB / 20), MIN_NOISE)
    noise = np.random.default_rng(0).standard_normal(samples.size).astype(np.float32) * level
    return (np.clip(samples + noise, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _phones(entries: Sequence[tuple[str, int, int]]) -> list[Phone]:
    """(pocketsphinx name, start frame, frame count) → Phones; fillers and noises become SIL."""
    phones = []
    for name, start, count in entries:
        label = name.upper() if name.upper() in ARPABET else SILENCE
        phones.append(Phone(label, start / FRAME_RATE, (start + count) / FRAME_RATE))
    return phones


def _cover(phones: Sequence[Phone], duration: float) -> list[Phone]:
    """Sorted phones → phones covering [0, duration] s: gaps filled with SIL, neighbouring SILs merged."""
    out: list[Phone] = []
    t = 0.0
    for p in sorted(phones, key=lambda p: p.start):
        start, end = max(p.start, t), min(p.end, duration)
        if end <= start:
            continue
        if start > t:
            out = _append(out, Phone(SILENCE, t, start))
        out = _append(out, Phone(p.label, start, end))
        t = end
    if t < duration:
        out = _append(out, Phone(SILENCE, t, duration))
    if out and out[-1].end < duration:
        out[-1] = Phone(out[-1].label, out[-1].start, duration)
    return out


def _append(phones: list[Phone], phone: Phone) -> list[Phone]:
    """Append, merging a SIL into a SIL just before it."""
    if phones and phone.label == SILENCE and phones[-1].label == SILENCE:
        phones[-1] = Phone(SILENCE, phones[-1].start, phone.end)
    else:
        phones.append(phone)
    return phones


# ---------------------------------------------------------------- text

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(digits: str) -> list[str]:
    """A digit string → English words: numbers below 1000 in full, longer ones digit by digit."""
    n = int(digits)
    if len(digits) > 3 or (len(digits) > 1 and digits[0] == "0"):
        return [_ONES[int(c)] for c in digits]
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return words
    if n < 20:
        return words + [_ONES[n]]
    return words + [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])


def normalize_text(text: str) -> list[str]:
    """Transcript → lower-case dictionary words: accents and punctuation dropped, inner apostrophes kept, digits spelled."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words: list[str] = []
    for token in re.findall(r"[a-z']+|[0-9]+", text):
        if token[0].isdigit():
            words += number_words(token)
        elif token.strip("'"):
            words.append(token.strip("'"))
    return words


def _add_missing_words(decoder, words: Sequence[str]) -> None:
    """Give words the dictionary lacks a letter-to-sound pronunciation."""
    missing = sorted({w for w in words if decoder.lookup_word(w) is None})
    for i, word in enumerate(missing):
        decoder.add_word(word, letters_to_phones(word), update=i == len(missing) - 1)


# Longest spellings first; rough, but vowels stay vowels and lip closures stay closures.
_SPELLINGS = [
    ("tch", "CH"), ("igh", "AY"), ("sch", "S K"), ("ough", "AO"),
    ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("wh", "W"), ("ck", "K"), ("ng", "NG"),
    ("qu", "K W"), ("gh", "G"), ("kn", "N"), ("wr", "R"),
    ("ee", "IY"), ("ea", "IY"), ("ie", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"), ("oa", "OW"),
    ("oi", "OY"), ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("ei", "EY"), ("ey", "EY"), ("au", "AO"),
    ("aw", "AO"), ("ew", "UW"), ("ue", "UW"), ("ar", "AA R"), ("er", "ER"), ("ir", "ER"), ("ur", "ER"),
    ("or", "AO R"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"),
    ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"),
    ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"),
    ("y", "IY"), ("z", "Z"),
]


def letters_to_phones(word: str) -> str:
    """A lower-case word → a rough ARPAbet pronunciation ("zorblax" → "Z AO R B L AE K S")."""
    letters = re.sub(r"([^aeiou])\1", r"\1", re.sub(r"[^a-z]", "", word))  # doubled consonants sound once
    if len(letters) > 2 and letters.endswith("e") and letters[-2] not in "aeiouy":
        letters = letters[:-1]                                             # silent final e
    phones, i = [], 0
    if letters.startswith("y"):
        phones, i = ["Y"], 1                                               # word-initial y is a consonant
    while i < len(letters):
        spelling, sound = next((s, p) for s, p in _SPELLINGS if letters.startswith(s, i))
        phones.append(sound)
        i += len(spelling)
    return " ".join(phones) or "AH"
