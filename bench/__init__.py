"""Side-by-side benchmarks of pacskit against DCMTK and Orthanc (``python -m bench``)."""
