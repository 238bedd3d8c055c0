"""Modality encoders: ``forward(x) -> [B, N, D]``, behind a name registry."""

from .base import Classifier, Encoder, FramedAudio, ImagePreprocess, Transcriber, image_to_tensor
from .registry import create_encoder, list_encoders, register_encoder, register_family

__all__ = ["Classifier", "Encoder", "FramedAudio", "ImagePreprocess", "Transcriber", "create_encoder",
           "image_to_tensor", "list_encoders", "register_encoder", "register_family"]
