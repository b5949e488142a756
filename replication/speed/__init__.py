"""How the kit runs fast on a machine: nothing here changes what is computed, only how.

- `machine`: what `auto` picks on this machine (precision, XLA, conv gradients, threads per op), and why.
- `conv_gradients`: convolution gradients computed as forward convolutions (`train.conv_gradients`).
"""
