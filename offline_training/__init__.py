"""Offline training: history in, a deployable model (``model.onnx`` + ``card.json``) out.

Load -> scale -> window -> train (PyTorch) -> calibrate thresholds -> evaluate -> plots ->
export to ONNX. Scoring of exported models goes through ``stream_detector.core.scoring`` so
offline scores come from the same code as live ones.
"""

__all__: list[str] = []
