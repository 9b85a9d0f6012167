"""The event vocabulary of the contract: regions, sources and their payload values."""

from __future__ import annotations

REGIONS: tuple[str, ...] = (
    "arica", "tarapaca", "antofagasta", "atacama", "coquimbo", "valparaiso", "metropolitana",
    "ohiggins", "maule", "nuble", "biobio", "araucania", "los-rios", "los-lagos", "aysen",
    "magallanes",
)
SOURCES: tuple[str, ...] = ("security.incident", "survey.victimization", "migration.case")
EVENT_FIELDS: tuple[str, ...] = (
    "event_id", "timestamp", "region", "source", "schema_version", "correlation_id", "payload",
)
INCIDENT_TYPES = ("robbery", "assault", "burglary", "vehicle_theft", "fraud", "homicide")
REPORTERS = ("citizen", "police", "sensor")
CASE_TYPES = ("asylum", "visa", "residence", "deportation")
CASE_STATUSES = ("open", "in_review", "approved", "rejected")
COUNTRIES = ("VE", "PE", "BO", "CO", "HT", "AR", "EC", "CN", "DO", "CU", "US", "ES")
