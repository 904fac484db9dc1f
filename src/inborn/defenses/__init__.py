"""Defences built on ticket families: the Random RST Switch (R2S)."""

from inborn.defenses.random_switch import ExpectedTickets, RandomSwitch, SingleTicket

__all__ = ["ExpectedTickets", "RandomSwitch", "SingleTicket"]
