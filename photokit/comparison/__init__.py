"""Two visits: the same skin measured in both and the change judged against the noise
(`compare`, ``photokit.compare``)."""
