"""Qt-free, I/O-free math of the studio: schedules, parameterizations, methods,
samplers, networks and in-memory datasets (torch + numpy only)."""
