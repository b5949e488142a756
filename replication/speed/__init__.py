"""How the kit runs fast on a machine: nothing here changes what is computed, only how.

- `conv_gradients`: convolution gradients computed as forward convolutions (`train.conv_gradients`).
"""
