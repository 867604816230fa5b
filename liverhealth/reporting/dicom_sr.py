"""The measurements as a DICOM Comprehensive 3D SR (TID 1500 Measurement Report, highdicom),
and read back: liver volume, tumour burden and, per lesion, volume and the longest and
perpendicular axial diameters, each group referencing its segment of our SEG.

Every number is the segmentation's (measurements.json); nothing comes from a language model.
The SR is marked incomplete and unverified: a draft until a radiologist signs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from liverhealth import __version__
from liverhealth.domain import Measurements
from liverhealth.errors import InputError
from liverhealth.imaging.dicom_seg import LIVER, NEOPLASM, person_name

SR_SERIES_NUMBER = 901
SR_DECIMALS = 3  # values to 0.001 (mL, mm, %): a DICOM decimal string holds 16 characters
VOLUME = codes.SCT.Volume
LONG_AXIS = hd.sr.CodedConcept("103339001", "SCT", "Long Axis")
SHORT_AXIS = hd.sr.CodedConcept("103340004", "SCT", "Short Axis")
BURDEN = hd.sr.CodedConcept("LH-0001", "99LIVERHEALTH", "Tumour burden, percent of liver volume")
ML = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
MM = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
PERCENT = hd.sr.CodedConcept("%", "UCUM", "percent")
CT_PROCEDURE = hd.sr.CodedConcept("25045-6", "LN", "CT unspecified body region")
LIVER_SEGMENT, TUMOUR_SEGMENT = 1, 2


def build_sr(
    seg: Dataset, measurements: Measurements, model_id: str, reader: str | None = None, signed: bool = False
) -> Dataset:
    """A TID 1500 report of ``measurements`` referencing ``seg``; with ``reader`` (a reader's revision),
    the reader is a person observer beside the device, and a ``signed`` report is marked complete and
    verified by the reader."""
    if measurements.liver_volume_ml is None:
        raise InputError("A DICOM SR needs volumes in mL: this input has no known voxel size.")
    source = hd.sr.SourceSeriesForSegmentation(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)

    def segment(number: int) -> hd.sr.ReferencedSegment:
        return hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=number,
            source_series=source,
        )

    def group(identifier: str, number: int, finding, values: list[tuple]) -> Any:
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=identifier),
            referenced_segment=segment(number),
            finding_type=finding,
            measurements=[
                hd.sr.Measurement(name=name, value=round(float(value), SR_DECIMALS), unit=unit)
                for name, value, unit in values
                if value is not None
            ],
        )

    groups = [
        group("liver", LIVER_SEGMENT, LIVER, [(VOLUME, measurements.liver_volume_ml, ML)]),
        group(
            "tumour burden",
            TUMOUR_SEGMENT,
            NEOPLASM,
            [(VOLUME, measurements.tumour_volume_ml, ML), (BURDEN, measurements.tumour_burden_pct, PERCENT)],
        ),
    ]
    for lesion in measurements.lesions:
        groups.append(
            group(
                f"lesion {lesion.lesion_id}",
                TUMOUR_SEGMENT,
                NEOPLASM,
                [
                    (VOLUME, lesion.volume_ml, ML),
                    (LONG_AXIS, lesion.longest_diameter_mm, MM),
                    (SHORT_AXIS, lesion.perpendicular_diameter_mm, MM),
                ],
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["liverhealth", model_id]),
            name="LiverHealth",
            manufacturer_name="LiverHealth",
            model_name=model_id[:64],
        ),
    )
    person = None
    if reader:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=person_name(reader)),
        )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person, observer_device_context=observer),
        procedure_reported=CT_PROCEDURE,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[seg],
        content=report,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="LiverHealth",
        is_complete=signed,
        is_final=signed,
        is_verified=signed,
        verifying_observer_name=person_name(reader) if signed and reader else None,
        verifying_organization="not recorded" if signed else None,
    )
    if signed:
        sr.SeriesDescription = "LiverHealth measurements (reviewed and signed)"
    elif reader:
        sr.SeriesDescription = "LiverHealth measurements (reader-edited, not signed)"
    else:
        sr.SeriesDescription = "LiverHealth measurements (draft, not reviewed)"
    sr.SoftwareVersions = __version__
    return sr


def read_sr_measurements(path: Path) -> dict[str, dict[str, float]]:
    """{tracking identifier: {measurement name: value}} of a TID 1500 SR (for checks and tools)."""
    sr = hd.sr.srread(str(path))
    out: dict[str, dict[str, float]] = {}
    for roi_group in sr.content.get_volumetric_roi_measurement_groups():
        out[roi_group.tracking_identifier] = {m.name.meaning: float(m.value) for m in roi_group.get_measurements()}
    return out
