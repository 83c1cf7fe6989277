"""Clinical exports and privacy: PDF reports, FHIR R4 bundles, DICOM files, de-identification.

Each export lives in its own module and imports its third-party library on use, so that
photokit works without them and names the missing extra in one line when one is asked for:

- `photokit.exports.pdf`: the HTML reports printed to A4 PDF by headless Chromium;
- `photokit.exports.fhir`: measurements and comparisons as a FHIR R4 ``Bundle``
  (``pip install 'photokit[fhir]'``);
- `photokit.exports.dicom`: photos as VL Photographic Image Storage and the PDF report as
  Encapsulated PDF Storage (``pip install 'photokit[dicom]'``);
- `photokit.exports.privacy`: the opaque eye-and-eyebrow mask and name scrubbing of
  ``--deidentify``.

See docs/EXPORTS.md.
"""
