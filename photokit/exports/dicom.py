"""DICOM Part 10 files for PACS: photos as VL Photographic Image, reports as Encapsulated PDF.

One study per subject: every file written by one export shares its
``StudyInstanceUID``, patient and study attributes; each visit (or each kind: photos,
aligned photos, report) is one DICOM series. Photos are stored uncompressed (Explicit VR
Little Endian, 8-bit RGB, ``LossyImageCompression`` saying whether the source was JPEG),
so the pixel data are exactly the ones photokit decoded or aligned.

References
----------
DICOM PS3.3 A.33.4 (VL Photographic Image IOD) and A.45.1 (Encapsulated PDF IOD);
PS3.4 B.5 (SOP classes 1.2.840.10008.5.1.4.1.1.77.1.4 and 1.2.840.10008.5.1.4.1.1.104.1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import PhotokitError
from ..io.atomic import write_bytes

VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
MISSING = "DICOM export needs the dicom extra: pip install 'photokit[dicom]'"


def require() -> None:
    """Raise `PhotokitError` naming the extra when pydicom is missing."""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        raise PhotokitError(MISSING) from None


def _da(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y%m%d")


def _tm(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%H%M%S")


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """Pixels as contiguous 8-bit RGB (16-bit shifted, greyscale replicated)."""
    px = np.asarray(pixels)
    if px.dtype == np.uint16:
        px = (px >> 8).astype(np.uint8)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=2)
    return np.ascontiguousarray(px[..., :3].astype(np.uint8))


@dataclass
class Study:
    """The files of one DICOM study (one subject), built in memory and then written.

    Parameters
    ----------
    patient_id : str, optional
        PatientID (from ``--subject`` or the manifest); empty when not known.
    patient_name : str, optional
        PatientName (from ``--patient-name``); empty when not given.
    study_date : datetime, optional
        StudyDate/StudyTime (the first photo's time); empty when unknown.
    description : str
        StudyDescription.
    """

    patient_id: str | None = None
    patient_name: str | None = None
    study_date: datetime | None = None
    description: str = "photokit skin photographs"
    files: list = field(default_factory=list)

    def __post_init__(self):
        require()
        from pydicom.uid import generate_uid

        self.study_uid = generate_uid()
        self.frame_of_reference = generate_uid()
        self._series: dict[str, tuple[str, int]] = {}

    def _series_of(self, description: str) -> tuple[str, int]:
        from pydicom.uid import generate_uid

        if description not in self._series:
            self._series[description] = (generate_uid(), len(self._series) + 1)
        return self._series[description]

    def _base(self, sop_class: str, modality: str, series: str, when: datetime | None):
        from pydicom.dataset import FileDataset, FileMetaDataset
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        now = datetime.now()
        ds.InstanceCreationDate, ds.InstanceCreationTime = _da(now), _tm(now)
        # Patient (type 2: present, empty when unknown)
        ds.PatientName = self.patient_name or ""
        ds.PatientID = self.patient_id or ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        # General Study
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDate, ds.StudyTime = _da(self.study_date), _tm(self.study_date)
        ds.ReferringPhysicianName = ""
        ds.StudyID = ""
        ds.AccessionNumber = ""
        ds.StudyDescription = self.description
        # General Series
        uid, number = self._series_of(series)
        ds.Modality = modality
        ds.SeriesInstanceUID = uid
        ds.SeriesNumber = number
        ds.SeriesDescription = series
        # General Equipment
        ds.Manufacturer = "photokit"
        ds.SoftwareVersions = __version__
        ds.InstanceNumber = sum(1 for f in self.files if f[1].SeriesInstanceUID == uid) + 1
        ds.ContentDate, ds.ContentTime = _da(when or now), _tm(when or now)
        return ds

    def add_photo(self, pixels: np.ndarray, *, name: str, series: str, when: datetime | None = None,
                  lossy_source: bool = False, derived: bool = False, comment: str = "") -> None:
        """Add one photo as VL Photographic Image Storage.

        Parameters
        ----------
        pixels : ndarray
            RGB (or greyscale) pixels, stored as 8-bit RGB exactly (see `rgb8`).
        name : str
            File name inside the output folder.
        series : str
            SeriesDescription; photos with the same one share a DICOM series.
        when : datetime, optional
            Capture time (ContentDate/Time, AcquisitionDateTime).
        lossy_source : bool
            The pixels came from a lossy file (JPEG): LossyImageCompression ``01``.
        derived : bool
            The pixels were resampled by photokit (aligned photo): ImageType DERIVED.
        comment : str
            ImageComments (no names or paths: the caller's neutral label).
        """
        from pydicom.sequence import Sequence

        px = rgb8(pixels)
        ds = self._base(VL_PHOTOGRAPHIC, "XC", series, when)
        ds.ImageType = ["DERIVED" if derived else "ORIGINAL", "PRIMARY"]
        if derived:   # what was done to the source photo (Type 3, General Image)
            ds.DerivationDescription = "resampled onto the baseline photo's grid by photokit's alignment"
        # Type 2C, present and empty: no patient orientation of a photograph is known, and a
        # face is no paired structure (dciodvfy: "Missing attribute Type 2C")
        ds.PatientOrientation = ""
        ds.Laterality = ""
        ds.AcquisitionDateTime = "" if when is None else when.strftime("%Y%m%d%H%M%S")
        ds.AcquisitionContextSequence = Sequence([])
        ds.FrameOfReferenceUID = self.frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.LossyImageCompression = "01" if lossy_source else "00"
        if lossy_source:
            ds.LossyImageCompressionMethod = "ISO_10918_1"
        if comment:
            ds.ImageComments = comment
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.Rows, ds.Columns = int(px.shape[0]), int(px.shape[1])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.BurnedInAnnotation = "NO"
        ds.PixelData = px.tobytes()
        self.files.append((name, ds))

    def add_pdf(self, pdf: bytes, *, name: str, title: str, series: str = "report") -> None:
        """Add a PDF report as Encapsulated PDF Storage."""
        from pydicom.sequence import Sequence

        ds = self._base(ENCAPSULATED_PDF, "DOC", series, None)
        ds.ConversionType = "WSD"
        ds.AcquisitionDateTime = ""
        ds.BurnedInAnnotation = "YES"
        ds.DocumentTitle = title
        ds.ConceptNameCodeSequence = Sequence([])
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        data = bytes(pdf)
        if len(data) % 2:
            data += b"\0"  # OB values have even length
        ds.EncapsulatedDocument = data
        ds.EncapsulatedDocumentLength = len(pdf)
        self.files.append((name, ds))

    def write(self, outdir) -> list[Path]:
        """Write every file into `outdir` (created), each atomically; returns the paths."""
        from pydicom import dcmwrite

        blobs = []
        for name, ds in self.files:  # encode all first: an error leaves nothing behind
            buf = io.BytesIO()
            dcmwrite(buf, ds, enforce_file_format=True)
            blobs.append((name, buf.getvalue()))
        return [write_bytes(Path(outdir) / name, data) for name, data in blobs]


def comparison_study(c, *, pdf: bytes | None, pictures=(None, None), patient_id=None,
                     patient_name=None) -> Study:
    """BEFORE, AFTER and AFTER aligned onto BEFORE (and the PDF report) as one study.

    `pictures` overrides the pixels stored for BEFORE and AFTER (the masked ones when
    de-identifying); the aligned AFTER is resampled from the AFTER picture given.
    """
    pb, pa = c.before_photo, c.after_photo
    study = Study(patient_id=patient_id, patient_name=patient_name,
                  study_date=pb.capture_time if pb is not None else None)
    before = pictures[0] if pictures[0] is not None else pb.pixels
    after = pictures[1] if pictures[1] is not None else pa.pixels
    study.add_photo(before, name="01_before.dcm", series="photos", when=pb.capture_time,
                    lossy_source=pb.format == "JPEG", comment="before")
    study.add_photo(after, name="02_after.dcm", series="photos", when=pa.capture_time,
                    lossy_source=pa.format == "JPEG", comment="after")
    study.add_photo(c.alignment.warp(after), name="03_after_aligned.dcm", series="aligned photos",
                    when=pa.capture_time, lossy_source=pa.format == "JPEG", derived=True,
                    comment="after, aligned onto before")
    if pdf is not None:
        study.add_pdf(pdf, name="04_report.dcm", title="photokit comparison report")
    return study


def series_study(s, *, pdf: bytes | None, picture=None, patient_id=None, patient_name=None) -> Study:
    """Every photo of a series (one DICOM series per visit: the photo and, for visits, the
    photo aligned onto the baseline) and the PDF report, as one study.

    `picture(visit, pixels)` may transform the pixels before they are stored (masking).
    """
    from ..io.photo import load

    ids = {e.subject for e in s.entries if e.subject}
    if patient_id is None and len(ids) > 1:
        raise PhotokitError(f"the series shows {len(ids)} subjects ({', '.join(sorted(ids))}); "
                            "a DICOM study is one subject: give --subject")
    pid = patient_id or (ids.pop() if ids else None)
    first = s.visits[0]
    study = Study(patient_id=pid, patient_name=patient_name,
                  study_date=first.entry.date)
    for k, v in enumerate(s.visits, 1):
        if not v.ok:
            continue
        photo = load(v.entry.source, max_pixels=s.max_pixels)
        px = photo.pixels if picture is None else picture(v, photo.pixels)
        when = photo.capture_time or v.entry.date
        label = f"visit {k}: {v.kind} {v.entry.iso_date()}"
        lossy = photo.format == "JPEG"
        study.add_photo(px, name=f"{k:02d}_photo.dcm", series=label, when=when, lossy_source=lossy,
                        comment=label)
        if v.method != "baseline" and v.alignment is not None:
            study.add_photo(v.alignment.warp(px), name=f"{k:02d}_aligned.dcm", series=label, when=when,
                            lossy_source=lossy, derived=True, comment=f"{label}, aligned onto the baseline")
    if pdf is not None:
        study.add_pdf(pdf, name=f"{len(s.visits) + 1:02d}_report.dcm", title="photokit series report")
    return study
