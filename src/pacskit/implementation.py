"""How pacskit names itself to a peer (the Implementation Class UID and Version Name
sub-items of A-ASSOCIATE, PS3.7 D.3.3.2) and in the File Meta Information of the files
it writes (PS3.10 7.1): plain strings, so that an association needs no pydicom."""

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.1"
"""pydicom's version-free implementation class UID (``pydicom.uid.PYDICOM_IMPLEMENTATION_UID``,
under pydicom's root): pacskit's datasets are pydicom's."""
IMPLEMENTATION_VERSION_NAME = "PACSKIT"
