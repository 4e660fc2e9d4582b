"""Unblur's own whole-photo deblurring network: blur kernels and degradations, data, network,
training, export, evaluation (issue 32)."""
