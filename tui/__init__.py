"""ec2-import-wizard: import a single-volume Windows VM into EC2 through ImportInstance."""

__version__ = "0.1.0"
