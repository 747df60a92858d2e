"""osbench: benchmark and load-test harness for OpenStack clouds."""

__version__ = "0.1.0"
