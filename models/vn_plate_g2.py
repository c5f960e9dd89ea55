"""EasyOCR's generation-2 recogniser (VGG features, BiLSTM, CTC), as a custom network.

Starts from EasyOCR's english_g2 weights and is fine-tuned on Vietnamese plate rows;
EasyOCR loads it through recog_network + user_network_directory like any custom network.
"""
from easyocr.model.vgg_model import Model

__all__ = ["Model"]
