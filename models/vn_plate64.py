"""EasyOCR custom recogniser for Vietnamese plate rows read at 64 px (recog_network="vn_plate64").

vn_plate's layers (models/vn_plate.py, the same names, so its weights load as they are), fed rows twice
as high and wide: its first three blocks look at the characters at twice vn_plate's scale, one more
pooling after them brings the features back to vn_plate's size, and its other layers go on from there.
EasyOCR builds it as Model(num_class=..., **network_params) and calls model(image, text).
"""
import torch.nn as nn
from vn_plate import Model as VnPlate

FIRST_BLOCKS = 11  # the layers of features that run at twice vn_plate's scale: its first three blocks


class Model(VnPlate):
    def __init__(self, input_channel, output_channel, hidden_size, num_class):
        super().__init__(input_channel, output_channel, hidden_size, num_class)
        self.pool = nn.MaxPool2d(2, 2)  # 64 x W rows, after three blocks: 16 x W/4 -> vn_plate's 8 x W/8

    def forward(self, input, text=None):
        f = self.features[FIRST_BLOCKS:](self.pool(self.features[:FIRST_BLOCKS](input)))
        out, _ = self.rnn(f.squeeze(2).permute(0, 2, 1))  # batch, time, channels
        return self.head(out)
