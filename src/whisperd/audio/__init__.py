"""Audio input and output: decoding uploads to 16 kHz mono samples, and rendering transcripts."""
