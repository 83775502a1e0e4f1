"""The people a journey is about, as the domain keeps them: its own types, mapped from the feeds.

A journey stores what it needs of the victim or caller in these types, not in the
feed contract's models: the contract may change (a feed v2, a field renamed or
dropped), and journeys stored under the old one must still load. So these ignore
keys they do not know and copy from any object with the same attributes
(``from_attributes``), which is how a feed record's victim becomes one.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class _Facts(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, from_attributes=True)


class Name(_Facts):
    title: str | None = None
    forename: str | None = None
    surname: str | None = None


class ContactDetails(_Facts):
    email: str | None = None
    mobile: str | None = None


class Preferences(_Facts):
    channel: str = "email"  # email, sms, both or none
    frequency_days: int = 28
    language: str = "en"
    opted_out: bool = False


class SafeContact(_Facts):
    sms: bool = True
    email: bool = True


class Guardian(_Facts):
    name: Name | None = None
    email: str | None = None
    mobile: str | None = None


class VictimFacts(_Facts):
    """A victim as their journey knows them (from the latest Niche record naming them)."""

    person_id: str
    name: Name | None = None
    date_of_birth: date | None = None
    contact: ContactDetails = Field(default_factory=ContactDetails)
    preferences: Preferences = Field(default_factory=Preferences)
    safe_contact: SafeContact = Field(default_factory=SafeContact)
    enhanced_rights: list[str] = Field(default_factory=list)
    guardian: Guardian | None = None


class CallerFacts(_Facts):
    """A STORM caller as their journey knows them."""

    person_id: str
    name: Name | None = None
    contact: ContactDetails = Field(default_factory=ContactDetails)
    consent_to_updates: bool = False
