"""The face pass of a photo: every face meshed, once per photo and job.

`face_pass` is what `measure`, `align`, `compare` and `series` ask for a photo's faces:
the mesh (`photokit.faces.mesh.find_faces`), whose search for faces smaller than its
whole-photo detector sees falls back to the Haar cascade's boxes
(`photokit.faces.haar.detect_faces`, run at most once), and the Haar faces themselves
when no face meshes (they seed the colour skin mask of a face-less photo). Both are kept
on the `Photo` (`Photo.memo`), so a job that measures and aligns a photo searches it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..io.photo import Photo
from .haar import FACE_BOX_MM, Face, detect_faces
from .mesh import FaceMesh, find_faces


@dataclass(frozen=True)
class FacePass:
    """The faces of one photo.

    Attributes
    ----------
    meshes : list of FaceMesh
        Meshed faces, largest first (empty for a greyscale photo or no face).
    haar : list of Face
        The Haar cascade's faces when no face meshed (else empty: not searched).
    """

    meshes: list[FaceMesh]
    haar: list[Face]


def face_pass(photo: Photo) -> FacePass:
    """The faces of `photo`, searched once per photo (see module notes).

    With a known scale (`Photo.mm_per_px`) that rules out faces (at least
    ``FACE_BOX_MM[0]`` wide) smaller than the whole-photo pass finds (1/8 of the long
    side), the fallbacks are skipped, and the Haar search is bounded to faces of a human
    size. A search with fallbacks done before (without a scale: align runs before the
    scale is known) is reused when it found no face, or found its faces in the
    whole-photo pass: the search without fallbacks would find exactly those.
    """
    mm = photo.mm_per_px
    fallbacks = mm is None or FACE_BOX_MM[0] / mm < max(photo.height, photo.width) / 8

    def haar():
        return photo.memo(("haar", mm), lambda: detect_faces(photo.gray8(), mm_per_px=mm))

    def search(fallbacks: bool) -> list[FaceMesh]:
        if not photo.is_colour:
            return []
        return find_faces(photo.pixels, proposals=lambda: [f.box for f in haar()], fallbacks=fallbacks)

    wider = None if fallbacks else photo.memo(("meshes", True))
    if wider is not None and all(f.detector == "whole" for f in wider):
        meshes = wider
    else:
        meshes = photo.memo(("meshes", fallbacks), lambda: search(fallbacks))
    return FacePass(meshes, [] if meshes else haar())
