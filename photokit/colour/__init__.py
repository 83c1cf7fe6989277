"""Colour: conversions (`convert`: sRGB, linear RGB, CIELAB), the ColorChecker reference
(`colorchecker`), card detection and fit (`checker`), calibration modes (`calibration`)
and the haemoglobin/melanin separation (`chromophores`)."""
