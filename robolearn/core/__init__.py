"""The ground floor: config loading, the protocols, durable file I/O and small statistics.

Everything else in robolearn may import this package; it imports nothing of robolearn's, only the
standard library, numpy and PyYAML (an import-boundary test keeps it so).
"""
