"""The peer users run today: a faster-whisper server that transcribes one request at a time.

``POST /v1/audio/transcriptions`` (multipart ``file``; ``beam_size``, default 5, and
``vad_filter``, default false, as faster-whisper's own defaults) answers ``{"text": ...}``;
requests queue on one lock, as in the self-hosted faster-whisper servers that process a single
request at once.

    python bench/baseline_server.py --model DIR --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import io
from typing import Annotated

import uvicorn
from fastapi import FastAPI, File, Form, UploadFile
from faster_whisper import WhisperModel, decode_audio


def create(model_dir: str) -> FastAPI:
    """An app with one model and one lock."""
    model = WhisperModel(model_dir, device="cpu", compute_type="int8")
    lock = asyncio.Lock()
    app = FastAPI()

    def transcribe(data: bytes, beam_size: int, vad_filter: bool) -> str:
        audio = decode_audio(io.BytesIO(data))
        segments, _ = model.transcribe(audio, beam_size=beam_size, vad_filter=vad_filter)
        return "".join(segment.text for segment in segments).strip()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: Annotated[UploadFile, File()],
        beam_size: Annotated[int, Form()] = 5,
        vad_filter: Annotated[str, Form()] = "false",
    ) -> dict[str, str]:
        data = await file.read()
        async with lock:
            text = await asyncio.to_thread(transcribe, data, beam_size, vad_filter == "true")
        return {"text": text}

    return app


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create(args.model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
