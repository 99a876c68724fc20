"""stream-detector: real-time anomaly detection for live Kafka feeds.

Scoring contract, shared by every model family: a batch of windows in
(``(batch, window, features)`` float32), one score per window out, higher = more
anomalous, plus per-feature / per-time-step reconstruction errors for explanations.

The worker's modules never import ``offline_training`` or torch: a worker image carries
ONNX Runtime, not PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
