"""Bias-free learned denoisers: networks, safetensors weights, training and fast inference."""

from restorelab.models.nets import ARCHS, BFCNN, BFBatchNorm2d, BFUNet, build_model
from restorelab.models.weights import load_model, read_metadata, save_model

__all__ = [
    "ARCHS",
    "BFCNN",
    "BFUNet",
    "BFBatchNorm2d",
    "build_model",
    "load_model",
    "read_metadata",
    "save_model",
]
