"""One photo: capture quality (`quality`, ``photokit.check``) and every metric of it
(`measure`, ``photokit.measure``)."""
