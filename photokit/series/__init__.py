"""A treatment course: visits, alignment into the baseline, trends (`course`,
``photokit.Series``) and the recovery fit after each session (`recovery`)."""
