"""Test and benchmark support: a synthetic corpus and real DICOM peers on loopback."""
