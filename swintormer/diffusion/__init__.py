"""The diffusion prior: a latent autoencoder (f=4), a conditional UNet denoiser, schedulers, sampling.

The denoiser is conditioned by concatenation on the encoder's latent of the blurry image and
samples a latent of the sharp image; that latent is the prior the restorer fuses at its stem.
Networks and schedulers are separate (diffusers style) and the sampling loop takes the denoiser
as a plain callable, so ONNX Runtime or TensorRT sessions drop in for the PyTorch module.
"""
