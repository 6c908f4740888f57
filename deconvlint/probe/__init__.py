"""The artifact probe (``--probe``): measure what a model paints on smooth inputs, with
onnxruntime for ONNX files and forward hooks for torch modules.
"""
