"""Input and output at the edges: reading photos (`photo`), regions (`roi`), and writing
every output atomically (`atomic`). Nothing here knows about skin or metrics."""
