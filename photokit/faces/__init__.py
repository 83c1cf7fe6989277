"""Faces: Haar face and eye detection (`haar`), the MediaPipe face mesh, irises, pose and
zones (`mesh`), and the skin mask they seed (`skin`)."""
