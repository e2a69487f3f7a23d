"""Helpers shared by the test modules, the conftest files and the benchmarks: plain functions,
classes and constants, never fixtures (those stay in conftest.py, where pytest finds them).

- `disks`: small source disks and the images qemu-img makes of them
- `aws`: test credentials, boto3 clients for a local endpoint, the `sandbox` command in a
  subprocess, and the plain-boto3 steps of an import (presign, upload, ImportInstance, wait)
- `cli`: the `ec2-import-wizard` command in a subprocess, its events and run records
- `profiles`: the profile case tables (a valid base profile and the bad ones)
- `proxy`: an HTTP proxy that records answers and injects faults
- `netproxy`: a TCP proxy that delays, caps, resets, refuses and stalls connections

No test module imports another test module or a conftest: what two of them share lives here.
"""
