"""Aligning two photos on the subject (`align`, ``photokit.align``), and finding that
subject (`subject`)."""
