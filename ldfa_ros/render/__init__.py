"""Renderers: where a face is hidden (regions) and how (classic filters, latent diffusion)."""
