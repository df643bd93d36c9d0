"""Per-stream state machines for real-time transcription (socket-free)."""
