"""`face`: every face of one photo (the Python API of ``photokit face``).

Loads the photo (`photokit.io.photo.load`), meshes every face in it
(`photokit.faces.mesh.find_faces`: 468 landmarks, irises, head pose, zones) and gives the
photo's scale from them (`photokit.faces.mesh.face_scale`: the iris as a ruler, else the
inter-ocular rule). I/O at this edge only; the meshing is the pure core's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PhotokitError
from ..io.photo import Photo, load
from .mesh import FaceMesh, FaceScale, draw_overlay, face_scale, faces_document, find_faces


@dataclass
class Faces:
    """The faces of one photo.

    Attributes
    ----------
    image : str
        The photo's path or name.
    faces : list of FaceMesh
        Every face found, largest first (empty when none is).
    scale : FaceScale
        The photo's scale from its faces (``relative`` without one).
    photo : Photo
        The loaded photo (not serialised).
    """

    image: str
    faces: list[FaceMesh]
    scale: FaceScale
    photo: Photo | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The SPEC "Faces" document (``photokit face --json``)."""
        return faces_document(self.faces, image=self.image, scale=self.scale)

    def overlay(self, pixels: np.ndarray | None = None) -> np.ndarray:
        """The photo (or `pixels` of its size, e.g. de-identified) with every mesh, iris,
        zone and pose drawn (`photokit.faces.mesh.draw_overlay`)."""
        if pixels is None and self.photo is None:
            raise ValueError("no photo kept with these faces: pass the pixels to draw on")
        return draw_overlay(self.photo.pixels if pixels is None else pixels, self.faces)


def face(image, *, max_pixels: int | None = None) -> Faces:
    """Every face of a photo: 468-point mesh, irises, head pose, skin zones, and the scale.

    Parameters
    ----------
    image : str, path, ndarray or Photo
        The photo (RGB).
    max_pixels : int, optional
        Decompression-bomb limit for `load`.

    Returns
    -------
    Faces
        With an empty ``faces`` list when no face is found.

    Raises
    ------
    PhotokitError
        An unreadable photo, a greyscale one (the face models need colour), or one that is
        fully transparent (nothing shown).
    """
    photo = load(image, max_pixels=max_pixels)
    name = photo.path or photo.name
    if not photo.is_colour:
        raise PhotokitError("photo is greyscale: the face models need an RGB photo", name)
    if photo.alpha is not None and not photo.alpha.any():
        raise PhotokitError("photo is fully transparent: nothing to see", name)
    faces = find_faces(photo.pixels)
    return Faces(name, faces, face_scale(faces), photo)
