"""``selfsup compress``: a smaller deployable encoder, label-free.

:mod:`targets` names the prunable weights, :mod:`distill` the label-free fine-tuning data
(unlabeled images + the original encoder's embeddings), :mod:`magnitude` and :mod:`ssvi` the two
pruning methods, :mod:`quantize` int8 post-training quantization, :mod:`size` the honest sparse
size (values + indices), :mod:`export` ONNX/TorchScript with the onnxruntime check and
:mod:`stage` the stage that ties them together (docs/compress.md).
"""
