"""Using a trained encoder: embeddings of image files (``selfsup embed``), the model card, and
serving the exported ONNX model with KServe."""
