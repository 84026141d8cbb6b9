"""Networks called as ``net(x, log_snr)``; importing this package registers them in
``NETWORKS``: ``mlp`` (points) and ``unet`` (images)."""

from . import mlp, unet  # noqa: F401  (register the factories)
