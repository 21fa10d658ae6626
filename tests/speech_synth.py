"""Speech with known phoneme times, made with espeak-ng for the speech tests.

espeak-ng's C library (``libespeak-ng.so.1``) is called through ctypes: in
synchronous mode it hands the audio and, with phoneme events switched on, one
event per phoneme whose ``audio_position`` (ms) says where that phoneme starts
in the audio. Those times are the ground truth the aligner is checked against.

espeak keeps global state: it is initialised once per process, the callback
object lives at module level (ctypes must not free it while C holds it), and a
lock serialises synthesis. Phoneme names are espeak's mnemonics: vowels such as
``a``, ``aI``, ``A:``, ``@``, ``0``; consonants such as ``p``, ``b``, ``m``,
``f``; ``_`` and ``_:`` are pauses, ``;`` and ``'`` marks are stripped.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from math import gcd

import numpy as np

LIBRARY = "libespeak-ng.so.1"
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE = 1
PCM_SCALE = 32768.0  # int16 full scale


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the message
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Synth:
    """Synthesised speech: float32 samples [N] in [-1,1] at `rate` Hz, and espeak's phonemes."""

    samples: np.ndarray
    rate: int
    phonemes: list[tuple[str, float]]  # (espeak mnemonic, start in seconds)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.rate


class _Espeak:
    """The one espeak instance of this process."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(LIBRARY)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        self.rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if self.rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.rate})")
        self.chunks: list[np.ndarray] = []
        self.phonemes: list[tuple[str, float]] = []
        self.callback = _CALLBACK_TYPE(self._on_synth)  # kept alive as long as this object
        self.lib.espeak_SetSynthCallback(self.callback)
        self.lock = threading.Lock()

    def _on_synth(self, wav, n: int, events) -> int:
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == EVENT_PHONEME:
                name = event.id.string.decode("ascii", "replace")
                self.phonemes.append((name, event.audio_position / 1000.0))
            i += 1
        return 0  # 0 = go on

    def synthesize(self, text: str, voice: str, wpm: int) -> Synth:
        with self.lock:
            self.chunks, self.phonemes = [], []
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak has no voice {voice!r}")
            self.lib.espeak_SetParameter(PARAM_RATE, wpm, 0)
            data = text.encode("utf-8") + b"\0"
            status = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed ({status})")
            pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
            return Synth((pcm / PCM_SCALE).astype(np.float32), self.rate, list(self.phonemes))


_ESPEAK: _Espeak | None = None
_INIT_LOCK = threading.Lock()


def synthesize(text: str, voice: str = "en-us", wpm: int = 150) -> Synth:
    """Speak `text` with espeak-ng → samples at espeak's rate (22050 Hz) and phoneme start times."""
    global _ESPEAK
    with _INIT_LOCK:
        if _ESPEAK is None:
            _ESPEAK = _Espeak()
    return _ESPEAK.synthesize(text, voice, wpm)


def silence(seconds: float, rate: int = 22050) -> Synth:
    """Digital silence of `seconds`, as a Synth with no phonemes."""
    return Synth(np.zeros(round(seconds * rate), np.float32), rate, [])


def join(*parts: Synth) -> Synth:
    """Concatenate Synths of one rate; phoneme times are shifted to the joined audio."""
    rate = parts[0].rate
    if any(p.rate != rate for p in parts):
        raise ValueError("join needs one sample rate")
    phonemes, offset = [], 0.0
    for part in parts:
        phonemes += [(name, t + offset) for name, t in part.phonemes]
        offset += len(part.samples) / rate
    return Synth(np.concatenate([p.samples for p in parts]), rate, phonemes)


def resample_to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """float32 [N] at `rate` Hz → float32 [M] at 16 kHz (polyphase filter)."""
    from scipy.signal import resample_poly

    g = gcd(16000, rate)
    return resample_poly(samples, 16000 // g, rate // g).astype(np.float32)
