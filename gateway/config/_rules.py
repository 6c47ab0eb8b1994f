"""``[[rules]]``: the operator's declarative rules, evaluated in order; the first that matches decides.

Each rule has a ``match`` (every key given must hold; a list means "any of")
and a ``then`` (route to partners, or not relevant with a reason; plus the
business fields and documents to send along). Values are checked here
(event names as the eCH-0223 XSD spells them, business keys, permit codes and
categories, cantons); partners and sources are checked against the rest of the
configuration, and ``fields`` values against those the plugins declare, by ``check-config``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.config._durations import Duration
from gateway.config._suggest import did_you_mean
from gateway.document_picking import PLACEHOLDERS, pattern_problem
from gateway.ech0223.codes import BusinessKey, Canton, PersonEvent, ResidencePermit
from gateway.ech0223.writer import text_problem
from gateway.facts import MessageKind
from gateway.person_state import Nationality

PermitCategory = Literal["B", "C", "Ci", "F", "N", "L", "G", "other"]
#: What ``match.event`` accepts: the personEvent values of eCH-0223 1.5, and "none".
EVENTS = (*get_args(PersonEvent), "none")
#: Facts a normaliser exposes besides the core's (gateway/facts.py), matchable under ``fields``.
NORMALISER_FACTS = ("format", "source_event", "person_event", "nationality_before", "mapping",
                    "row", "business_process_id", "our_business_reference_id",
                    "your_business_reference_id")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleMatch(_Strict):
    """``[rules.match]``: when the rule applies. Every key given must hold; omitted keys match all."""

    event: list[str] | None = Field(
        default=None, description='eCH-0223 personEvent of the message, spelled as the XSD'
        ' ("none": it has none).')
    source: list[str] | None = Field(default=None, description="Sources the input came from.")
    kind: list[MessageKind] | None = Field(
        default=None, description="Root element of the message.")
    nationality: list[Nationality] | None = Field(
        default=None, description="The person's nationality *before* the event.")
    permit_category: list[PermitCategory] | None = Field(
        default=None, description="Permit category before the event (B, C, L, F...).")
    permit: list[str] | None = Field(
        default=None, description='eCH-0006 permit codes before the event ("0202").')
    municipality: list[int] | None = Field(default=None, description="BFS municipality ids.")
    canton: list[str] | None = Field(default=None, description='Canton abbreviations ("ZH").')
    age_min: int | None = Field(default=None, ge=0, description="Youngest age that matches.")
    age_max: int | None = Field(default=None, ge=0, description="Oldest age that matches.")
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="Other facts by name, a value or a list of values: "
        + ", ".join(NORMALISER_FACTS) + ", and the core's facts. A value no message the rules"
        " decide can have is refused, for the facts whose values the core and plugins declare"
        " (the built-ins: format, source_event, person_event, nationality_before, kind).")

    @model_validator(mode="after")
    def _ages_in_order(self) -> RuleMatch:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}:"
                             " no age matches")
        return self

    @field_validator("event")
    @classmethod
    def _known_events(cls, events: list[str] | None) -> list[str] | None:
        """Event names exactly as the eCH-0223 XSD spells them (``undoSeperation``...)."""
        for name in events or ():
            if name == "changeOccupation":
                raise ValueError(
                    "personEvent 'changeOccupation' is not in eCH-0223 1.5, in which messages"
                    " are decided (an eCH-0020 changeOccupation has no personEvent): match"
                    ' fields = { source_event = "changeOccupation" }')
            _known(name, EVENTS, "eCH-0223 personEvent")
        return events

    @field_validator("permit")
    @classmethod
    def _known_permits(cls, permits: list[str] | None) -> list[str] | None:
        for code in permits or ():
            _known(code, get_args(ResidencePermit), "eCH-0006 permit code")
        return permits

    @field_validator("canton")
    @classmethod
    def _known_cantons(cls, cantons: list[str] | None) -> list[str] | None:
        for abbreviation in cantons or ():
            _known(abbreviation, get_args(Canton), "canton abbreviation")
        return cantons


def _known(value: str, known: tuple[str, ...], what: str) -> None:
    """:raises ValueError: ``value`` is not one of ``known`` (naming a close one)."""
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}{did_you_mean(value, known)}")


class RuleThen(_Strict):
    """``[rules.then]``: what the rule decides: partners, or not relevant with a reason."""

    route_to: list[str] = Field(default_factory=list, description="Partners that get the message.")
    not_relevant: str | None = Field(
        default=None, description="Nobody gets it, for this reason (journaled).")
    business_key: BusinessKey | None = Field(default=None, description="eCH-0223 businessKey.")
    deadline: Duration | None = Field(
        default=None, description='eCH-0223 deadline: whole days after the message\'s date ("30d").')
    business_comment: str | None = Field(
        default=None, max_length=1024, description="eCH-0223 businessComment.")
    documents: list[str] = Field(
        default_factory=list,
        description="Files to attach from the documents folder ([documents] dir): names or globs,"
        " matched in any case, with placeholders for this message's person or case: "
        + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        + ' ("permit-{vn}.pdf", "{local_id}/*.pdf"). Each must match a file, else the message'
        " is quarantined.")

    @field_validator("deadline")
    @classmethod
    def _whole_days(cls, deadline: float | None) -> float | None:
        if deadline is not None and deadline % 86400:
            raise ValueError(f"the deadline is a date: give whole days (\"30d\"), not"
                             f" {deadline / 86400:g} days")
        return deadline

    @field_validator("business_comment")
    @classmethod
    def _xml_text(cls, comment: str | None) -> str | None:
        problem = text_problem(comment) if comment is not None else None
        if problem is not None:
            raise ValueError(problem)
        return comment

    @field_validator("documents")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise ValueError(f"documents pattern {pattern!r}: {problem}")
        return patterns

    @model_validator(mode="after")
    def _one_outcome(self) -> RuleThen:
        if bool(self.route_to) == (self.not_relevant is not None):
            raise ValueError("give either route_to (partners) or not_relevant (a reason)")
        return self


class RuleSettings(_Strict):
    """One ``[[rules]]`` entry."""

    name: str = Field(min_length=1, description="Named in the journal with every decision.")
    description: str = Field(default="", description="What the rule is for, for the operator.")
    match: RuleMatch = Field(default_factory=RuleMatch, description="When the rule applies.")
    then: RuleThen = Field(description="What it decides.")
