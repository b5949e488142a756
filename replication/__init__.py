"""TensorFlow/Keras replication kit for CycleGAN (Zhu et al. 2017), with pix2pix as the paired baseline."""

__version__ = "0.1.0"
