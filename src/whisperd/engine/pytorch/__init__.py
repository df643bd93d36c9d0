"""The PyTorch engine: Hugging Face Whisper checkpoints on any device PyTorch runs on.

Only this package imports ``torch`` for inference; it is loaded when ``engine="torch"`` is chosen,
so the CTranslate2 path never needs PyTorch installed.
"""
