"""The PS3.4 C.2.2.2 matching rules as a table, run against every source pacskit queries.

Each case: (id, match keys, attributes of one dataset, expected). The attributes are
keyword → value (a list for a multi-valued attribute; None for an absent attribute).
"""

MATCHING_CASES = [
    # single value matching
    ("single-equal", {"PatientID": "P1"}, {"PatientID": "P1"}, True),
    ("single-different", {"PatientID": "P1"}, {"PatientID": "P10"}, False),
    ("single-case-sensitive", {"StudyDescription": "chest"}, {"StudyDescription": "CHEST"}, False),
    ("single-pn-case-insensitive", {"ReferringPhysicianName": "smith^john"},
     {"ReferringPhysicianName": "SMITH^JOHN"}, True),
    ("single-absent-attribute", {"AccessionNumber": "A1"}, {"AccessionNumber": None}, False),
    ("single-empty-attribute", {"AccessionNumber": "A1"}, {"AccessionNumber": ""}, False),
    ("single-date", {"StudyDate": "20240115"}, {"StudyDate": "20240115"}, True),
    ("single-date-other", {"StudyDate": "20240115"}, {"StudyDate": "20240116"}, False),
    # list of UID matching
    ("uid-list-hit", {"StudyInstanceUID": "1.2.3\\1.2.4"}, {"StudyInstanceUID": "1.2.4"}, True),
    ("uid-list-miss", {"StudyInstanceUID": "1.2.3\\1.2.4"}, {"StudyInstanceUID": "1.2.5"}, False),
    ("uid-single", {"StudyInstanceUID": "1.2.3"}, {"StudyInstanceUID": "1.2.3"}, True),
    ("uid-no-prefix-match", {"StudyInstanceUID": "1.2"}, {"StudyInstanceUID": "1.2.3"}, False),
    # universal matching
    ("universal-empty", {"PatientID": ""}, {"PatientID": "anything"}, True),
    ("universal-empty-absent", {"PatientID": ""}, {"PatientID": None}, True),
    ("universal-star", {"StudyDescription": "*"}, {"StudyDescription": None}, True),
    # wildcard matching
    ("wildcard-prefix", {"StudyDescription": "CT*"}, {"StudyDescription": "CT THORAX"}, True),
    ("wildcard-prefix-miss", {"StudyDescription": "CT*"}, {"StudyDescription": "MR HEAD"}, False),
    ("wildcard-suffix", {"StudyDescription": "*HEAD"}, {"StudyDescription": "MR HEAD"}, True),
    ("wildcard-middle", {"StudyDescription": "C*X"}, {"StudyDescription": "CT THORAX"}, True),
    ("wildcard-question", {"PatientID": "P?"}, {"PatientID": "P7"}, True),
    ("wildcard-question-one-char", {"PatientID": "P?"}, {"PatientID": "P17"}, False),
    ("wildcard-regex-chars-literal", {"StudyDescription": "a.b*"}, {"StudyDescription": "axb c"}, False),
    ("wildcard-pn-case", {"ReferringPhysicianName": "sm*"}, {"ReferringPhysicianName": "Smith^J"}, True),
    # date range matching
    ("date-range-inside", {"StudyDate": "20240101-20240131"}, {"StudyDate": "20240115"}, True),
    ("date-range-bounds", {"StudyDate": "20240101-20240131"}, {"StudyDate": "20240131"}, True),
    ("date-range-outside", {"StudyDate": "20240101-20240131"}, {"StudyDate": "20240201"}, False),
    ("date-open-end", {"StudyDate": "20240101-"}, {"StudyDate": "20991231"}, True),
    ("date-open-end-before", {"StudyDate": "20240101-"}, {"StudyDate": "20231231"}, False),
    ("date-open-start", {"StudyDate": "-20231231"}, {"StudyDate": "19990101"}, True),
    ("date-open-start-after", {"StudyDate": "-20231231"}, {"StudyDate": "20240101"}, False),
    ("date-range-absent", {"StudyDate": "20240101-"}, {"StudyDate": None}, False),
    # time range matching
    ("time-range-inside", {"StudyTime": "080000-120000"}, {"StudyTime": "093015"}, True),
    ("time-range-outside", {"StudyTime": "080000-120000"}, {"StudyTime": "120001"}, False),
    ("time-fraction", {"StudyTime": "093015.5-093016"}, {"StudyTime": "093015.75"}, True),
    ("time-fraction-below", {"StudyTime": "093015.5-093016"}, {"StudyTime": "093015.25"}, False),
    ("time-partial-upper", {"StudyTime": "08-10"}, {"StudyTime": "105959"}, True),
    ("time-partial-upper-past", {"StudyTime": "08-10"}, {"StudyTime": "110000"}, False),
    ("time-single-partial", {"StudyTime": "10"}, {"StudyTime": "1030"}, True),
    ("time-open-start", {"StudyTime": "-0800"}, {"StudyTime": "075959"}, True),
    # datetime range matching
    ("datetime-range", {"AcquisitionDateTime": "20240101-20240102"},
     {"AcquisitionDateTime": "20240102235959"}, True),
    ("datetime-range-outside", {"AcquisitionDateTime": "20240101-20240102"},
     {"AcquisitionDateTime": "20240103000000"}, False),
    ("datetime-open-start", {"AcquisitionDateTime": "-20240101120000"},
     {"AcquisitionDateTime": "20240101115959.9"}, True),
    # multi-valued attributes: any value may match
    ("multivalue-any", {"ModalitiesInStudy": "MR"}, {"ModalitiesInStudy": ["CT", "MR"]}, True),
    ("multivalue-none", {"ModalitiesInStudy": "US"}, {"ModalitiesInStudy": ["CT", "MR"]}, False),
    ("modalities-list", {"ModalitiesInStudy": "US\\MR"}, {"ModalitiesInStudy": ["CT", "MR"]}, True),
    # several keys: all must match
    ("all-keys", {"PatientID": "P1", "StudyDate": "2024*"[:0] + "20240101-"},
     {"PatientID": "P1", "StudyDate": "20230101"}, False),
]
