"""DICOMweb (PS3.18): the HTTP services of the archive."""
