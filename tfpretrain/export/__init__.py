"""SavedModel export: one generic writer (`export_saved_model`) and one module per signature
kind."""

from tfpretrain.export.autoencoder import export_autoencoder
from tfpretrain.export.core import export_saved_model
from tfpretrain.export.encoder import export_encoder
from tfpretrain.export.gan import export_gan

__all__ = ["export_autoencoder", "export_encoder", "export_gan", "export_saved_model"]
