"""Modality Performed Procedure Step (PS3.4 Annex F): the attribute requirements as data,
the states, the checks an SCP makes, and the datasets an SCU sends (pure)."""

from pacskit.mpps.model import MPPS_RETRIEVE_SOP_CLASS, MPPS_SOP_CLASS, StepRefused, StepStatus

__all__ = ["MPPS_RETRIEVE_SOP_CLASS", "MPPS_SOP_CLASS", "StepRefused", "StepStatus"]
