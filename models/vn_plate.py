"""EasyOCR custom recogniser for Vietnamese plate rows (loaded by EasyOCR as recog_network="vn_plate").

A small CRNN: six conv blocks squeeze a 32-pixel-high row to one feature row,
a BiLSTM reads it left to right, CTC decodes. About 0.5M parameters, a few ms per row on a CPU.
EasyOCR builds it as Model(num_class=..., **network_params) and calls model(image, text).
"""
import torch.nn as nn


def _block(c_in, c_out, pool):
    layers = [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(pool, pool))
    return layers


class Model(nn.Module):
    def __init__(self, input_channel, output_channel, hidden_size, num_class):
        super().__init__()
        c = output_channel
        self.features = nn.Sequential(
            *_block(input_channel, c // 8, (2, 2)),  # 16 x W/2
            *_block(c // 8, c // 4, (2, 2)),  # 8 x W/4
            *_block(c // 4, c // 2, None),
            *_block(c // 2, c // 2, (2, 1)),  # 4 x W/4
            *_block(c // 2, c, None),
            *_block(c, c, (2, 1)),  # 2 x W/4
            nn.Conv2d(c, c, (2, 1), 1, 0), nn.ReLU(inplace=True),  # 1 x W/4
        )
        self.rnn = nn.LSTM(c, hidden_size, bidirectional=True, batch_first=True)
        self.head = nn.Linear(hidden_size * 2, num_class)

    def forward(self, input, text=None):
        f = self.features(input).squeeze(2).permute(0, 2, 1)  # batch, time, channels
        out, _ = self.rnn(f)
        return self.head(out)
