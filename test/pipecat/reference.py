"""Pipecat's own turn-taking, driven offline, as the reference for the engine's tests in this folder.

Reads one JSON request on stdin and prints one JSON answer on stdout. Audio files are raw 16-bit mono
PCM at 16 kHz. Two commands:

features   Each clip through `LocalSmartTurnAnalyzerV3._predict_endpoint` (Pipecat's truncation to the
           last 8 s, its `compute_whisper_log_mel_features` and its onnxruntime session), with the
           clip converted as `BaseSmartTurn` does (int16 -> float32 / 32768). The features the
           analyzer computed are written beside the clip (`<clip>.features.f32`, float32 [80][800]).

session    Each conversation through `SileroVADAnalyzer` (default params) and
           `LocalSmartTurnAnalyzerV3` (default params), glued the way Pipecat 1.14's
           `LLMUserAggregator` drives them: per audio frame the VAD runs first and queues its
           started/stopped frame; the turn stop strategy appends the audio with the speaking flag it
           had before that frame (`TurnAnalyzerUserTurnStopStrategy._handle_input_audio`); then the
           queued VAD frame is handled (`update_vad_start_secs` and the flag on a start,
           `analyze_end_of_turn` on a stop). Frames are 16 samples (1 ms) so that every VAD window
           and every turn boundary falls on a frame edge, and the analyzer's clock is the audio
           position (`time.monotonic` in `base_smart_turn` reads it), so the run is deterministic.

Positions in the answer are 16 kHz sample offsets.
"""

import asyncio
import json
import sys

import numpy as np

import pipecat.audio.turn.smart_turn.base_smart_turn as base_smart_turn
import pipecat.audio.turn.smart_turn.local_smart_turn_v3 as local_smart_turn_v3
from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADState

SAMPLE_RATE = 16000
FRAME_SAMPLES = 16

logger.remove()


class AudioClock:
    """Stands in for the `time` module inside `base_smart_turn`: the clock is the audio position."""

    def __init__(self):
        self.samples = 0

    def monotonic(self):
        return self.samples / SAMPLE_RATE

    def perf_counter(self):
        return self.samples / SAMPLE_RATE


def read_pcm(path):
    return np.fromfile(path, dtype=np.int16)


def capture_features():
    """Wraps Pipecat's feature function so that every call's output is kept."""
    captured = []
    original = local_smart_turn_v3.compute_whisper_log_mel_features

    def wrapper(audio, **kwargs):
        features = original(audio, **kwargs)
        captured.append(features)
        return features

    local_smart_turn_v3.compute_whisper_log_mel_features = wrapper
    return captured


def features_command(request):
    captured = capture_features()
    analyzer = LocalSmartTurnAnalyzerV3(sample_rate=SAMPLE_RATE)
    analyzer.set_sample_rate(SAMPLE_RATE)
    results = []
    for clip in request["clips"]:
        audio = read_pcm(clip["path"]).astype(np.float32) / 32768.0
        captured.clear()
        prediction = analyzer._predict_endpoint(audio)
        features = np.asarray(captured[0], dtype=np.float32)
        features.tofile(clip["path"] + ".features.f32")
        results.append({"name": clip["name"], "probability": prediction["probability"], "complete": prediction["prediction"] == 1})
    return {"clips": results}


async def run_session(path, clock):
    pcm = read_pcm(path)
    vad = SileroVADAnalyzer(sample_rate=SAMPLE_RATE)
    vad.set_sample_rate(SAMPLE_RATE)
    turn = LocalSmartTurnAnalyzerV3(sample_rate=SAMPLE_RATE)
    turn.set_sample_rate(SAMPLE_RATE)

    # Records the length of every segment the analyzer scores: the window ends at the stop.
    lengths = []
    predict = turn._predict_endpoint

    def predict_and_record(audio):
        lengths.append(len(audio))
        return predict(audio)

    turn._predict_endpoint = predict_and_record

    events = []
    vad_state = VADState.QUIET
    user_speaking = False
    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = pcm[start : start + FRAME_SAMPLES].tobytes()
        end = start + FRAME_SAMPLES
        clock.samples = end
        # VADController._handle_vad: only settled transitions become started/stopped frames.
        new_state = await vad.analyze_audio(frame)
        queued = None
        if new_state != vad_state and new_state not in (VADState.STARTING, VADState.STOPPING):
            queued = "started" if new_state == VADState.SPEAKING else "stopped"
            vad_state = new_state
        # TurnAnalyzerUserTurnStopStrategy._handle_input_audio, with the flag from before this frame.
        if turn.append_audio(frame, user_speaking) == EndOfTurnState.COMPLETE:
            await turn.analyze_end_of_turn()
            events.append({"type": "turn_complete", "rule": "silence", "atSamples": end})
        if queued == "started":
            turn.update_vad_start_secs(vad.params.start_secs)
            user_speaking = True
            events.append({"type": "speech_start", "confirmedAtSamples": end})
        elif queued == "stopped":
            user_speaking = False
            lengths.clear()
            state, metrics = await turn.analyze_end_of_turn()
            complete = state == EndOfTurnState.COMPLETE
            event = {"type": "speech_end", "confirmedAtSamples": end, "complete": complete}
            if metrics is not None:
                event["probability"] = metrics.probability
                event["scoredFromSamples"] = end - lengths[0]
            events.append(event)
            if complete:
                events.append({"type": "turn_complete", "rule": "model", "atSamples": end})
    await vad.cleanup()
    await turn.cleanup()
    return events


def session_command(request):
    clock = AudioClock()
    base_smart_turn.time = clock
    results = []
    for conversation in request["conversations"]:
        events = asyncio.run(run_session(conversation["path"], clock))
        results.append({"name": conversation["name"], "events": events})
    return {"conversations": results}


def main():
    request = json.load(sys.stdin)
    command = request["command"]
    if command == "features":
        answer = features_command(request)
    elif command == "session":
        answer = session_command(request)
    else:
        raise SystemExit(f"unknown command {command!r}")
    import onnxruntime
    import pipecat

    answer["versions"] = {"pipecat": pipecat.__version__ if hasattr(pipecat, "__version__") else None, "numpy": np.__version__, "onnxruntime": onnxruntime.__version__}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
