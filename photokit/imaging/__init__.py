"""Image filters shared by every layer above (`filters`): fast Gaussian blur, downscaling
by halvings, exact percentiles and range tests of uint8 images."""
