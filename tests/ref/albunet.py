"""AlbuNet, transcribed from the SIIM 1st-place solution's unet_pipeline/models/ternausnets.py (AlbuNet with
num_classes=1, num_filters=32, pretrained=False, is_deconv=False), for the parity golden.

Two differences from the original, neither of which changes the function: the encoder modules are held once (the
original registers conv1..conv5 a second time as aliases of encoder.conv1/bn1/layer1..4, so its state_dict holds
every encoder tensor twice), and the unused classifier encoder.fc is removed. pneumoseg's AlbuNet files therefore
use the names encoder.*, center.block.{1,2}.conv.*, dec5..dec1.block.{1,2}.conv.*, dec0.conv.*, final.*; it sets the
aliases and encoder.fc aside when it reads the winner's own checkpoints.
"""
import torch
import torchvision
from torch import nn
from torch.nn import functional as F


class ConvRelu(nn.Module):
    def __init__(self, in_, out):
        super().__init__()
        self.conv = nn.Conv2d(in_, out, 3, padding=1)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.activation(self.conv(x))


class Interpolate(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class DecoderBlockV2(nn.Module):
    def __init__(self, in_channels, middle_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(Interpolate(), ConvRelu(in_channels, middle_channels),
                                   ConvRelu(middle_channels, out_channels))

    def forward(self, x):
        return self.block(x)


class AlbuNet(nn.Module):
    def __init__(self, num_filters=32):
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)
        self.encoder = torchvision.models.resnet34()
        del self.encoder.fc
        nf = num_filters
        self.center = DecoderBlockV2(512, nf * 8 * 2, nf * 8)
        self.dec5 = DecoderBlockV2(512 + nf * 8, nf * 8 * 2, nf * 8)
        self.dec4 = DecoderBlockV2(256 + nf * 8, nf * 8 * 2, nf * 8)
        self.dec3 = DecoderBlockV2(128 + nf * 8, nf * 4 * 2, nf * 2)
        self.dec2 = DecoderBlockV2(64 + nf * 2, nf * 2 * 2, nf * 2 * 2)
        self.dec1 = DecoderBlockV2(nf * 2 * 2, nf * 2 * 2, nf)
        self.dec0 = ConvRelu(nf, nf)
        self.final = nn.Conv2d(nf, 1, kernel_size=1)

    def forward(self, x):
        e = self.encoder
        conv1 = self.pool(e.relu(e.bn1(e.conv1(x))))
        conv2 = e.layer1(conv1)
        conv3 = e.layer2(conv2)
        conv4 = e.layer3(conv3)
        conv5 = e.layer4(conv4)
        center = self.center(self.pool(conv5))
        dec5 = self.dec5(torch.cat([center, conv5], 1))
        dec4 = self.dec4(torch.cat([dec5, conv4], 1))
        dec3 = self.dec3(torch.cat([dec4, conv3], 1))
        dec2 = self.dec2(torch.cat([dec3, conv2], 1))
        dec1 = self.dec1(dec2)
        return self.final(self.dec0(dec1))
